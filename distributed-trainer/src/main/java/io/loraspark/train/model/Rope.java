package io.loraspark.train.model;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Rotary position embeddings in Hugging Face's rotate-half layout (Su et al. 2021, RoFormer): for a
 * head vector x at position p, {@code x' = x * cos(p θ) + rotate_half(x) * sin(p θ)} with {@code
 * rotate_half(x) = [-x2, x1]} and θ_i = base^(-2i/HD), the frequencies repeated for both halves.
 * {@code rotate_half} is a signed permutation, applied as one small GEMM with {@link #rotate}.
 */
final class Rope {
  private final int headDim;
  private final double theta;
  private final INDArray rotate; // [HD, HD]: rotate_half(x) = x @ rotate
  private final boolean float32Angles;

  Rope(int headDim, double theta, DataType dtype) {
    this.headDim = headDim;
    this.theta = theta;
    this.float32Angles = dtype == DataType.FLOAT;
    int half = headDim / 2;
    double[][] r = new double[headDim][headDim];
    for (int j = 0; j < half; j++) {
      r[j + half][j] = -1; // out[j] = -x[j + half]
      r[j][j + half] = 1; // out[j + half] = x[j]
    }
    this.rotate = Nd4j.create(r).castTo(dtype);
  }

  /**
   * Fills per-row cos and sin tables for a batch: row {@code n * heads + h} gets the angles of
   * position {@code positions[n]}.
   *
   * @param cos out, [N*heads, HD]
   * @param sin out, [N*heads, HD]
   */
  void fillTables(int[] positions, int heads, INDArray cos, INDArray sin) {
    int half = headDim / 2;
    double[] invFreq = new double[half];
    for (int i = 0; i < half; i++) {
      invFreq[i] = round(1.0 / Math.pow(theta, (2.0 * i) / headDim));
    }
    if (Kernels.vector(cos, sin)) {
      // straight into the float buffers: no per-step arrays for the garbage collector
      java.nio.FloatBuffer c = Kernels.buffer(cos).asFloatBuffer();
      java.nio.FloatBuffer s = Kernels.buffer(sin).asFloatBuffer();
      int cBase = Kernels.offset(cos) / 4;
      int sBase = Kernels.offset(sin) / 4;
      for (int n = 0; n < positions.length; n++) {
        for (int i = 0; i < half; i++) {
          double angle = round(positions[n] * invFreq[i]);
          float cv = (float) Math.cos(angle);
          float sv = (float) Math.sin(angle);
          for (int h = 0; h < heads; h++) {
            int base = (n * heads + h) * headDim;
            c.put(cBase + base + i, cv);
            c.put(cBase + base + i + half, cv);
            s.put(sBase + base + i, sv);
            s.put(sBase + base + i + half, sv);
          }
        }
      }
      return;
    }
    double[] c = new double[positions.length * heads * headDim];
    double[] s = new double[c.length];
    for (int n = 0; n < positions.length; n++) {
      for (int i = 0; i < half; i++) {
        double angle = round(positions[n] * invFreq[i]);
        double cv = Math.cos(angle);
        double sv = Math.sin(angle);
        for (int h = 0; h < heads; h++) {
          int base = (n * heads + h) * headDim;
          c[base + i] = cv;
          c[base + i + half] = cv;
          s[base + i] = sv;
          s[base + i + half] = sv;
        }
      }
    }
    cos.assign(Nd4j.createFromArray(c).reshape(cos.shape()));
    sin.assign(Nd4j.createFromArray(s).reshape(sin.shape()));
  }

  /**
   * In float32 models, angles are rounded to float32 as transformers' LlamaRotaryEmbedding does.
   */
  private double round(double v) {
    return float32Angles ? (float) v : v;
  }

  /**
   * Rotates {@code x} in place.
   *
   * @param x head vectors, [R, HD]
   * @param scratch scratch, [R, HD]
   */
  void forward(INDArray x, INDArray cos, INDArray sin, INDArray scratch) {
    if (Kernels.vector(x, cos, sin)) {
      vectorRope(x, cos, sin, false);
      return;
    }
    Nd4j.gemm(x, rotate, scratch, false, false, 1.0, 0.0);
    scratch.muli(sin);
    x.muli(cos).addi(scratch);
  }

  /**
   * Turns the gradient with respect to the rotated vectors into the gradient with respect to the
   * unrotated ones, in place: {@code dx = dx' * cos + (dx' * sin) @ rotate^T}.
   */
  void backward(INDArray dx, INDArray cos, INDArray sin, INDArray scratch1, INDArray scratch2) {
    if (Kernels.vector(dx, cos, sin)) {
      vectorRope(dx, cos, sin, true);
      return;
    }
    scratch1.assign(dx).muli(sin);
    Nd4j.gemm(scratch1, rotate, scratch2, false, true, 1.0, 0.0);
    dx.muli(cos).addi(scratch2);
  }

  /**
   * The fused kernel; relies on the tables' two halves being equal, as {@link #fillTables} makes.
   */
  private void vectorRope(INDArray x, INDArray cos, INDArray sin, boolean inverse) {
    VectorKernels.rope(
        Kernels.buffer(x),
        Kernels.offset(x),
        Kernels.buffer(cos),
        Kernels.offset(cos),
        Kernels.buffer(sin),
        Kernels.offset(sin),
        (int) x.rows(),
        headDim,
        inverse);
  }
}
