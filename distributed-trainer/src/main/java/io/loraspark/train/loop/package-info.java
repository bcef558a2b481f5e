/** Training and evaluation loops over the engine: batching, stepping, metrics. */
package io.loraspark.train.loop;
