package io.loraspark.train.model.quant;

import java.nio.FloatBuffer;

/** A frozen [rows, cols] weight kept in a compressed form, read back as float32 on demand. */
public sealed interface QuantizedMatrix permits Int8Matrix, Nf4Matrix {

  /** Output features. */
  int rows();

  /** Input features. */
  int cols();

  /** Bytes of the stored codes and scales (the memory this form holds). */
  long storedBytes();

  /** Writes the dequantised matrix, row-major, into {@code out[0 .. rows·cols)}. */
  void dequantize(FloatBuffer out);

  /** The dequantised matrix as a new row-major array. */
  default float[] dequantize() {
    float[] out = new float[rows() * cols()];
    dequantize(FloatBuffer.wrap(out));
    return out;
  }
}
