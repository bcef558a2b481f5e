/** Executor-side engine: model loading, forward/backward, LoRA adapters, optimizer, trainer. */
package io.loraspark.train;
