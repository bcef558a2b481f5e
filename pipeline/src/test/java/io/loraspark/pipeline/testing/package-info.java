/** Helpers shared by the pipeline module's tests: random adapters, the CLI run in-process. */
package io.loraspark.pipeline.testing;
