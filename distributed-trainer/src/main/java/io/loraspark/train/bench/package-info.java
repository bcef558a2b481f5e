/** Synthetic-model training benchmark: throughput, step split, MFU and memory of the engine. */
package io.loraspark.train.bench;
