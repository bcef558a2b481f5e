package io.loraspark.train.model.precision;

import static org.bytedeco.dnnl.global.dnnl.*;

import io.loraspark.train.model.BatchedGemms;
import java.lang.ref.Reference;
import java.util.HashMap;
import java.util.Map;
import org.bytedeco.dnnl.dnnl_memory;
import org.bytedeco.dnnl.dnnl_memory_desc_t;
import org.bytedeco.dnnl.dnnl_primitive;
import org.bytedeco.dnnl.dnnl_primitive_desc;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Attention's GEMMs in bf16, as PyTorch's CPU autocast runs {@code q @ kᵀ} and {@code p @ v}: both
 * operands converted to bf16 per call in their own layout (the matmul reads a transposed operand
 * through its strides: transposing 768 x 256 probabilities while converting them took 0.5 ms of a
 * 1.7 ms call at B4 T256, converting in place 0.1 ms, while the matmul slowed by 0.1–0.3 ms), one
 * oneDNN batched matmul over all X matrices, f32 accumulation and output, alpha as oneDNN's output
 * scale. The primitives of each call shape are made once per thread, which has its own stream and
 * bf16 copies too.
 */
final class Bf16BatchedMatmul implements BatchedGemms {
  /** The primitives for one call shape: the two conversions and the matmul. */
  private record Shape(
      dnnl_memory_desc_t aF32,
      dnnl_memory_desc_t aBf16,
      dnnl_memory_desc_t bF32,
      dnnl_memory_desc_t bBf16,
      dnnl_memory_desc_t c,
      dnnl_primitive convertA,
      dnnl_primitive convertB,
      dnnl_primitive matmul,
      long aBytes,
      long bBytes) {}

  private record Key(long x, long m, long k, long n, boolean transA, boolean transB, float alpha) {}

  /** The one instance; its primitives are per thread. */
  static final Bf16BatchedMatmul INSTANCE = new Bf16BatchedMatmul(true);

  // whether bf16 copies keep their source's layout when oneDNN has a fast kernel for that
  private final boolean inPlaceCopies;

  // per thread: oneDNN (built with DNNL_ENABLE_CONCURRENT_EXEC off, its default) shares one
  // scratchpad among a thread's primitives, so a primitive must run on the thread that made it
  private final ThreadLocal<Map<Key, Shape>> shapes = ThreadLocal.withInitial(HashMap::new);

  /**
   * With {@code inPlaceCopies} false, a transposed operand is always transposed by its conversion
   * (the layout used where oneDNN has no fast kernel for a strided bf16 source).
   */
  Bf16BatchedMatmul(boolean inPlaceCopies) {
    this.inPlaceCopies = inPlaceCopies;
  }

  @Override
  public void multiply(
      INDArray a, INDArray b, INDArray c, boolean transA, boolean transB, double alpha) {
    requireContiguous(a, "a");
    requireContiguous(b, "b");
    requireContiguous(c, "c");
    long[] mkn = OneDnn.productDims("batched matmul", a, transA, b, transB, c);
    Shape s =
        shapes
            .get()
            .computeIfAbsent(
                new Key(c.size(0), mkn[0], mkn[1], mkn[2], transA, transB, (float) alpha),
                key -> OmpThreads.call(() -> newShape(key)));
    OneDnnThread t = OneDnnThread.get();
    dnnl_memory aF32 = OneDnn.memory(s.aF32(), OneDnn.address(a));
    dnnl_memory aLow = OneDnn.memory(s.aBf16(), t.copy(0, s.aBytes()));
    dnnl_memory bF32 = OneDnn.memory(s.bF32(), OneDnn.address(b));
    dnnl_memory bLow = OneDnn.memory(s.bBf16(), t.copy(1, s.bBytes()));
    dnnl_memory cF32 = OneDnn.memory(s.c(), OneDnn.address(c));
    try {
      OmpThreads.run(
          () -> {
            t.reorder(s.convertA(), aF32, aLow);
            t.reorder(s.convertB(), bF32, bLow);
            t.matmul(s.matmul(), aLow, bLow, cF32);
          });
    } finally {
      for (dnnl_memory mem : new dnnl_memory[] {aF32, aLow, bF32, bLow, cF32}) {
        dnnl_memory_destroy(mem);
      }
      Reference.reachabilityFence(a);
      Reference.reachabilityFence(b);
      Reference.reachabilityFence(c);
    }
  }

  /**
   * [aF32, aBf16, bF32, bBf16, c]: the sources read as op(·), and their bf16 copies in the same
   * layout ({@code inPlace}) or plain row-major.
   */
  private static dnnl_memory_desc_t[] newShapeDescs(Key key, boolean inPlace) {
    long x = key.x();
    long m = key.m();
    long k = key.k();
    long n = key.n();
    // op(a) [X, M, K] over a's buffer, [X, K, M] row-major when transposed; op(b) likewise
    long[] aStrides = key.transA() ? new long[] {m * k, 1, m} : new long[] {m * k, k, 1};
    long[] bStrides = key.transB() ? new long[] {k * n, 1, k} : new long[] {k * n, n, 1};
    return new dnnl_memory_desc_t[] {
      desc(x, m, k, dnnl_f32, aStrides),
      desc(x, m, k, dnnl_bf16, inPlace ? aStrides : new long[] {m * k, k, 1}),
      desc(x, k, n, dnnl_f32, bStrides),
      desc(x, k, n, dnnl_bf16, inPlace ? bStrides : new long[] {k * n, n, 1}),
      desc(x, m, n, dnnl_f32, new long[] {m * n, n, 1})
    };
  }

  private Shape newShape(Key key) {
    dnnl_memory_desc_t[] d = newShapeDescs(key, inPlaceCopies);
    dnnl_primitive_desc pd = OneDnn.matmul(d[1], d[3], d[4], key.alpha(), false);
    if (inPlaceCopies && OneDnn.implName(pd).startsWith("ref")) {
      // no fast kernel takes this strided bf16 source on this CPU (only AVX512_BF16 was measured):
      // transpose while converting, into plain row-major copies, which every kernel takes
      dnnl_primitive_desc_destroy(pd);
      d = newShapeDescs(key, false);
      pd = OneDnn.matmul(d[1], d[3], d[4], key.alpha(), false);
    }
    try {
      return new Shape(
          d[0],
          d[1],
          d[2],
          d[3],
          d[4],
          OneDnn.reorder(d[0], d[1]),
          OneDnn.reorder(d[2], d[3]),
          OneDnn.primitive(pd),
          2 * key.x() * key.m() * key.k(),
          2 * key.x() * key.k() * key.n());
    } finally {
      dnnl_primitive_desc_destroy(pd);
    }
  }

  private static dnnl_memory_desc_t desc(long x, long rows, long cols, int type, long[] strides) {
    dnnl_memory_desc_t md = new dnnl_memory_desc_t();
    OneDnn.check(
        dnnl_memory_desc_init_by_strides(md, 3, new long[] {x, rows, cols}, type, strides),
        "dnnl_memory_desc_init_by_strides");
    return md;
  }

  private static void requireContiguous(INDArray a, String name) {
    if (a.rank() != 3 || a.dataType() != DataType.FLOAT) {
      throw new IllegalArgumentException(
          "bf16 batched matmul needs "
              + name
              + " as a row-major float32 [X, rows, cols] array but got "
              + a.dataType()
              + " "
              + java.util.Arrays.toString(a.shape()));
    }
    long[] st = a.stride();
    if (st[2] != 1 || st[1] != a.size(2) || st[0] != a.size(1) * a.size(2)) {
      throw new IllegalArgumentException(
          "bf16 batched matmul needs "
              + name
              + " contiguous but its strides are "
              + java.util.Arrays.toString(st));
    }
  }
}
