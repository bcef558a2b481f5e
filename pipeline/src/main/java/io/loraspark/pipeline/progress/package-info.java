/**
 * Progress a person can follow on long work: bars on stderr for each stage, fed by Spark's own
 * status (tasks) and by accumulators the training tasks update every step (steps, tokens,
 * adapters), which executors report to the driver with their heartbeats.
 */
package io.loraspark.pipeline.progress;
