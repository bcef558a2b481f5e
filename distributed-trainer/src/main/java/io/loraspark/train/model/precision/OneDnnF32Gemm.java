package io.loraspark.train.model.precision;

import static org.bytedeco.dnnl.global.dnnl.*;

import io.loraspark.train.model.Gemm;
import io.loraspark.train.model.Kernels;
import java.lang.ref.Reference;
import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import org.bytedeco.dnnl.dnnl_memory;
import org.bytedeco.dnnl.dnnl_memory_desc_t;
import org.bytedeco.dnnl.dnnl_primitive;
import org.bytedeco.dnnl.dnnl_primitive_desc;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The adapters' float32 GEMMs through oneDNN's f32 matmul, for runs that already use oneDNN (bf16):
 * on the skinny products of a rank-8 branch ({@code x·Aᵀ}, {@code u·Bᵀ}, {@code dyᵀ·u}, {@code
 * dy·B}, {@code gᵀ·x}, {@code g·A} at 1,024 rows, widths 576 and 1,536) it ran 1.5–8x OpenBLAS's
 * {@code sgemm} on the project's 2-core Zen 4, and the adapters stay in f32 as the precision
 * contract says. Operands are read in place through their strides (row-range views, transposes);
 * alpha is oneDNN's output scale and beta = 1 its sum post-op; a skinny C = Aᵀ·B is computed as its
 * transpose ({@link #transposed}). One primitive per call shape and thread, made on first use.
 */
final class OneDnnF32Gemm implements Gemm {
  static final OneDnnF32Gemm INSTANCE = new OneDnnF32Gemm();

  /** A call shape: dims, the three operands' element strides, the scalars. */
  private record Key(long m, long k, long n, long[] strides, float alpha, boolean accumulate) {
    @Override
    public boolean equals(Object o) {
      return o instanceof Key q
          && m == q.m
          && k == q.k
          && n == q.n
          && Arrays.equals(strides, q.strides)
          && alpha == q.alpha
          && accumulate == q.accumulate;
    }

    @Override
    public int hashCode() {
      return Arrays.hashCode(strides) * 31 + Long.hashCode(m * 1_000_003 + k * 1_009 + n);
    }
  }

  private record Shape(
      dnnl_memory_desc_t a, dnnl_memory_desc_t b, dnnl_memory_desc_t c, dnnl_primitive matmul) {}

  // per thread: oneDNN (built with DNNL_ENABLE_CONCURRENT_EXEC off, its default) shares one
  // scratchpad among a thread's primitives, so a primitive must run on the thread that made it
  private final ThreadLocal<Map<Key, Shape>> shapes = ThreadLocal.withInitial(HashMap::new);

  /** The widest C that {@link #transposed} computes as Cᵀ (a rank's columns). */
  private static final int SKINNY = 64;

  // per thread: Cᵀ for #transposed, one per shape ([r, out] for each projection width)
  private final ThreadLocal<Map<Long, INDArray>> scratch = ThreadLocal.withInitial(HashMap::new);

  private OneDnnF32Gemm() {}

  @Override
  public void gemm(
      INDArray a,
      INDArray b,
      INDArray c,
      boolean transA,
      boolean transB,
      double alpha,
      double beta) {
    if (beta != 0 && beta != 1) {
      throw new IllegalArgumentException("oneDNN f32 gemm takes beta 0 or 1, not " + beta);
    }
    long[] mkn = OneDnn.productDims("gemm", a, transA, b, transB, c);
    long m = mkn[0];
    long k = mkn[1];
    long n = mkn[2];
    if (transA && !transB && n < m && n <= SKINNY) {
      transposed(a, b, c, alpha, beta == 1);
      return;
    }
    long[] strides = {
      rowStride(a, transA), colStride(a, transA),
      rowStride(b, transB), colStride(b, transB),
      rowStride(c, false), colStride(c, false)
    };
    Shape s =
        shapes
            .get()
            .computeIfAbsent(
                new Key(m, k, n, strides, (float) alpha, beta == 1),
                key -> OmpThreads.call(() -> newShape(key)));
    OneDnnThread t = OneDnnThread.get();
    dnnl_memory am = OneDnn.memory(s.a(), OneDnn.address(requireFloat(a)));
    dnnl_memory bm = OneDnn.memory(s.b(), OneDnn.address(requireFloat(b)));
    dnnl_memory cm = OneDnn.memory(s.c(), OneDnn.address(requireFloat(c)));
    try {
      OmpThreads.run(() -> t.matmul(s.matmul(), am, bm, cm));
    } finally {
      dnnl_memory_destroy(am);
      dnnl_memory_destroy(bm);
      dnnl_memory_destroy(cm);
      Reference.reachabilityFence(a);
      Reference.reachabilityFence(b);
      Reference.reachabilityFence(c);
    }
  }

  /**
   * C ← alpha·Aᵀ·B (+ C) as the transpose of Cᵀ = alpha·Bᵀ·A, which reads A row by row: for the
   * adapters' dB = s·dyᵀ·u (dy [N, out], u [N, r]) oneDNN took 0.25–0.47 ms reading dy column by
   * column and 0.09–0.23 ms reading it by rows (N 1,024, out 576–1,536, r 8). Cᵀ goes to a scratch
   * of the calling thread, as oneDNN writes a transposed C with its reference kernel (100x slower).
   */
  private void transposed(INDArray a, INDArray b, INDArray c, double alpha, boolean accumulate) {
    requireFloat(c); // written by the loop below, not by oneDNN, which would check it
    long m = c.rows();
    long n = c.columns();
    INDArray t =
        scratch
            .get()
            .computeIfAbsent((n << 32) | m, key -> Nd4j.create(DataType.FLOAT, new long[] {n, m}));
    gemm(b, a, t, true, false, alpha, 0.0);
    addTransposed(t, c, accumulate);
  }

  /**
   * c ← tᵀ, or c ← c + tᵀ, for a small t [n, m] (r·out floats) in a plain loop: ND4J's add of the
   * transposed view took 0.17–0.22 ms, as long as the product itself.
   */
  private static void addTransposed(INDArray t, INDArray c, boolean accumulate) {
    FloatBuffer from = t.data().asNioFloat();
    ByteBuffer to = Kernels.buffer(c);
    long base = Kernels.offset(c);
    long rowStride = c.stride(0) * Float.BYTES;
    long colStride = c.stride(1) * Float.BYTES;
    int m = (int) c.rows();
    int n = (int) c.columns();
    for (int i = 0; i < m; i++) {
      for (int j = 0; j < n; j++) {
        int at = Math.toIntExact(base + i * rowStride + j * colStride);
        float v = from.get(j * m + i);
        to.putFloat(at, accumulate ? to.getFloat(at) + v : v);
      }
    }
    Reference.reachabilityFence(t);
    Reference.reachabilityFence(c);
  }

  /** The element stride between rows of op(x). */
  private static long rowStride(INDArray x, boolean trans) {
    return trans ? stride(x, 1) : stride(x, 0);
  }

  /** The element stride between columns of op(x). */
  private static long colStride(INDArray x, boolean trans) {
    return trans ? stride(x, 0) : stride(x, 1);
  }

  // a dimension of length 1 may report any stride; oneDNN wants one that fits the buffer
  private static long stride(INDArray x, int dim) {
    return x.size(dim) == 1 ? x.size(1 - dim) : x.stride(dim);
  }

  private static INDArray requireFloat(INDArray x) {
    if (x.rank() != 2 || x.dataType() != DataType.FLOAT) {
      throw new IllegalArgumentException(
          "oneDNN f32 gemm needs float32 matrices but got "
              + x.dataType()
              + " "
              + Arrays.toString(x.shape()));
    }
    return x;
  }

  private static Shape newShape(Key key) {
    long[] st = key.strides();
    dnnl_memory_desc_t a = OneDnn.plain(key.m(), key.k(), dnnl_f32, st[0], st[1]);
    dnnl_memory_desc_t b = OneDnn.plain(key.k(), key.n(), dnnl_f32, st[2], st[3]);
    dnnl_memory_desc_t c = OneDnn.plain(key.m(), key.n(), dnnl_f32, st[4], st[5]);
    dnnl_primitive_desc pd = OneDnn.matmul(a, b, c, key.alpha(), key.accumulate());
    try {
      return new Shape(a, b, c, OneDnn.primitive(pd));
    } finally {
      dnnl_primitive_desc_destroy(pd);
    }
  }
}
