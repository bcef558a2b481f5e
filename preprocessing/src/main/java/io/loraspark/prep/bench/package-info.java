/** Throughput benchmarks of the preprocessing steps. */
package io.loraspark.prep.bench;
