package io.loraspark.train.model;

import java.util.concurrent.TimeUnit;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.transforms.custom.LogSoftMax;
import org.nd4j.linalg.api.ops.impl.transforms.custom.SoftMax;
import org.nd4j.linalg.api.ops.impl.transforms.strict.Sigmoid;
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
 * The engine's non-GEMM kernels, exactly as {@link Transformer} calls them, at the 576-hidden
 * benchmark shape (B = 4, T = 256, so N = 1024 rows; 9 query / 3 kv heads of 64; F = 1536; V =
 * 8192). Lives in the model package to reach the package-private kernels.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(1)
public class KernelBench {
  static final int B = 4;
  static final int T = 256;
  static final int N = B * T;
  static final int C = 576;
  static final int NH = 9;
  static final int NKV = 3;
  static final int HD = 64;
  static final int F = 1536;
  static final int V = 8192;
  static final DataType DT = DataType.FLOAT;

  INDArray x; // [N, C]
  INDArray w; // [C]
  INDArray rInv; // [N, 1]
  INDArray out; // [N, C]
  INDArray s1; // [N, C]
  INDArray s2; // [N, C]
  INDArray dx; // [N, C]
  INDArray q; // [N*NH, HD]
  INDArray cos; // [N*NH, HD]
  INDArray sin; // [N*NH, HD]
  INDArray ropeScratch; // [N*NH, HD]
  ModelKernels kernels; // as a float32 workspace picks them
  INDArray gate; // [N, F]
  INDArray up; // [N, F]
  INDArray sig; // [N, F]
  INDArray act; // [N, F]
  INDArray scores; // [B*NKV, G*T, T]
  INDArray logits; // [N, V]

  @Setup
  public void setup() {
    x = Nd4j.rand(DT, N, C);
    w = Nd4j.rand(DT, C);
    rInv = Nd4j.create(DT, N, 1);
    out = Nd4j.create(DT, N, C);
    s1 = Nd4j.create(DT, N, C);
    s2 = Nd4j.create(DT, N, C);
    dx = Nd4j.create(DT, N, C);
    q = Nd4j.rand(DT, (long) N * NH, HD);
    cos = Nd4j.rand(DT, (long) N * NH, HD);
    sin = Nd4j.rand(DT, (long) N * NH, HD);
    ropeScratch = Nd4j.create(DT, (long) N * NH, HD);
    kernels = ModelKernels.of(new Rope(HD, 10000.0, DT), DT);
    gate = Nd4j.rand(DT, N, F);
    up = Nd4j.rand(DT, N, F);
    sig = Nd4j.create(DT, N, F);
    act = Nd4j.create(DT, N, F);
    scores = Nd4j.rand(DT, B * NKV, (NH / NKV) * T, T);
    logits = Nd4j.rand(DT, N, V);
  }

  @Benchmark
  public INDArray rmsNormForward() {
    kernels.norm().forward(x, w, 1e-6, rInv, out);
    return out;
  }

  @Benchmark
  public INDArray rmsNormBackward() {
    kernels.norm().backward(x, w, rInv, out, s1, s2, dx);
    return dx;
  }

  @Benchmark
  public INDArray rotaryForward() {
    kernels.rope().forward(q, cos, sin, ropeScratch);
    return q;
  }

  @Benchmark
  public INDArray siluTimesUp() {
    Nd4j.exec(new Sigmoid(gate, sig));
    return act.assign(gate).muli(sig).muli(up);
  }

  @Benchmark
  public INDArray attentionSoftmax() {
    Nd4j.exec(new SoftMax(scores, scores, 2));
    return scores;
  }

  @Benchmark
  public INDArray vocabLogSoftmax() {
    Nd4j.exec(new LogSoftMax(logits, logits));
    return logits;
  }
}
