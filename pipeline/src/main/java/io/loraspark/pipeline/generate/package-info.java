/** Text in, text out: prompts tokenized into decode requests, generated ids back into text. */
package io.loraspark.pipeline.generate;
