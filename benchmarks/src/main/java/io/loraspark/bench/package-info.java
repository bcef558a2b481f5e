/** JMH microbenchmarks of ND4J GEMM call styles, the engine's building block. */
package io.loraspark.bench;
