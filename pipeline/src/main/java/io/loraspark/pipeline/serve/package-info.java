/**
 * {@code serve}: an OpenAI-compatible HTTP server over one frozen base and many adapters, on the
 * KV-cached engine of {@code io.loraspark.train.decode}.
 */
package io.loraspark.pipeline.serve;
