package io.loraspark.bench;

import java.util.concurrent.TimeUnit;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The three ways to write {@code y = x W^T} in ND4J, on the engine's largest projection ([N, C] x
 * [F, C]^T at N = 1024, C = 576, F = 1536): GEMM into a preallocated output with a transpose flag
 * (what the engine does), the allocating {@code mmul} of a transposed view, and {@code mmul} of a
 * transposed copy. Why the engine never calls {@code mmul}.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class GemmBench {
  static final int N = 1024;
  static final int C = 576;
  static final int F = 1536;

  INDArray x; // [N, C]
  INDArray w; // [F, C]
  INDArray y; // [N, F]

  @Setup
  public void setup() {
    x = Nd4j.rand(DataType.FLOAT, N, C);
    w = Nd4j.rand(DataType.FLOAT, F, C);
    y = Nd4j.create(DataType.FLOAT, N, F);
  }

  @Benchmark
  public INDArray gemmPreallocatedTransposeFlag() {
    return Nd4j.gemm(x, w, y, false, true, 1.0, 0.0);
  }

  @Benchmark
  public INDArray mmulTransposedView() {
    return x.mmul(w.transpose());
  }

  @Benchmark
  public INDArray mmulTransposedCopy() {
    return x.mmul(w.transpose().dup());
  }
}
