package io.loraspark.train.safetensors;

import java.util.Arrays;
import java.util.Objects;

/**
 * Where one tensor lives in a safetensors file. Invariants (checked): dims are non-negative, {@code
 * 0 <= begin <= end}, and {@code end - begin == numel() * dtype.bytes()}.
 *
 * @param name the tensor name from the header
 * @param dtype the element type
 * @param shape dimensions in C (row-major) order, e.g. [out, in] for a linear weight; [] is a
 *     scalar; the array is copied in and out
 * @param begin first byte, relative to the start of the data section
 * @param end one past the last byte, relative to the start of the data section
 */
public record TensorInfo(String name, DType dtype, long[] shape, long begin, long end) {

  public TensorInfo {
    Objects.requireNonNull(name, "name");
    Objects.requireNonNull(dtype, "dtype");
    shape = shape.clone();
    long bytes;
    try {
      bytes = Math.multiplyExact(numelOf(shape), dtype.bytes());
    } catch (ArithmeticException e) {
      throw new IllegalArgumentException(
          "tensor '" + name + "': numel*bytes of shape " + Arrays.toString(shape) + " overflows",
          e);
    }
    if (begin < 0 || end < begin || end - begin != bytes) {
      throw new IllegalArgumentException(
          String.format(
              "tensor '%s': offsets [%d, %d] do not hold %d bytes of %s %s",
              name, begin, end, bytes, dtype, Arrays.toString(shape)));
    }
  }

  /** A copy of the shape. */
  @Override
  public long[] shape() {
    return shape.clone();
  }

  /** Number of elements: the product of the dims (1 for a scalar). */
  public long numel() {
    return numelOf(shape);
  }

  /** Number of bytes in the data section, {@code end - begin}. */
  public long byteLength() {
    return end - begin;
  }

  /**
   * Product of the dims.
   *
   * @throws IllegalArgumentException if a dim is negative
   * @throws ArithmeticException if the product overflows a long
   */
  static long numelOf(long[] shape) {
    long n = 1;
    for (int i = 0; i < shape.length; i++) {
      if (shape[i] < 0) {
        throw new IllegalArgumentException(
            "shape " + Arrays.toString(shape) + ": dimension " + i + " is negative");
      }
      n = Math.multiplyExact(n, shape[i]);
    }
    return n;
  }

  @Override
  public boolean equals(Object o) {
    return o instanceof TensorInfo t
        && name.equals(t.name)
        && dtype == t.dtype
        && Arrays.equals(shape, t.shape)
        && begin == t.begin
        && end == t.end;
  }

  @Override
  public int hashCode() {
    return Objects.hash(name, dtype, Arrays.hashCode(shape), begin, end);
  }

  @Override
  public String toString() {
    return String.format(
        "TensorInfo[%s %s %s data_offsets=[%d, %d]]",
        name, dtype, Arrays.toString(shape), begin, end);
  }
}
