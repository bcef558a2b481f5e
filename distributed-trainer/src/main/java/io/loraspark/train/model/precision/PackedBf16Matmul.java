package io.loraspark.train.model.precision;

import static org.bytedeco.dnnl.global.dnnl.*;

import java.lang.ref.Reference;
import java.util.HashMap;
import java.util.Map;
import org.bytedeco.dnnl.dnnl_memory;
import org.bytedeco.dnnl.dnnl_memory_desc_t;
import org.bytedeco.dnnl.dnnl_primitive;
import org.bytedeco.dnnl.dnnl_primitive_desc;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Pointer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * C [R, N] ← A [R, K] · B [K, N] (or C + A·B), with A converted to bf16 per call, B a frozen fp32
 * matrix converted once into the bf16 layout oneDNN's matmul asks for ({@code format_tag_any}, then
 * a reorder), and f32 accumulation and output. A and C are read and written in place in their ND4J
 * buffers. One primitive per (R, accumulate) and thread, made on first use and kept; the packed B
 * is shared by all of them, and by every thread (each thread has its own stream and bf16 copy of
 * A).
 */
final class PackedBf16Matmul {
  /** The primitives for one row count: A's f32→bf16 reorder and the matmul. */
  private record Shape(
      dnnl_memory_desc_t aF32,
      dnnl_memory_desc_t aBf16,
      dnnl_memory_desc_t c,
      dnnl_primitive convertA,
      dnnl_primitive matmul,
      String impl) {}

  private final long k;
  private final long n;
  private final dnnl_memory_desc_t packedDesc;
  private final BytePointer packedData; // owns the packed bf16 B (64-byte aligned inside)
  private final dnnl_memory packed;
  // per thread: oneDNN (built with DNNL_ENABLE_CONCURRENT_EXEC off, its default) shares one
  // scratchpad among a thread's primitives, so a primitive must run on the thread that made it
  private final ThreadLocal<Map<Long, Shape>> shapes = ThreadLocal.withInitial(HashMap::new);

  /**
   * Packs B once. {@code b} is a float32 row-major array [K, N], or with {@code transposed} [N, K]
   * read as its transpose (a projection weight W [out, in] is B = Wᵀ for the forward pass and B = W
   * for the input gradient). {@code rows} is the R whose primitive chooses the layout; other R
   * reuse it.
   */
  PackedBf16Matmul(INDArray b, boolean transposed, int rows) {
    requireRowMajor(b, "B");
    // oneDNN 2.5.2's reorder from a transposed (column-major) f32 source into the packed layout
    // gave wrong products when N is not a multiple of the layout's block (e.g. 48 of 64): a
    // row-major copy of the transpose is made first, once, and freed after packing (closed, not
    // left to the collector: a training base's 7·L copies, the fp32 projections' bytes, stayed
    // resident until a GC came, and in a run whose heap is quiet none did)
    INDArray rowMajor = transposed ? b.transpose().dup('c') : b;
    this.k = rowMajor.rows();
    this.n = rowMajor.columns();
    dnnl_memory_desc_t bF32 = OneDnn.plain(k, n, dnnl_f32, n, 1);
    dnnl_primitive_desc pd = // the layout, chosen under the thread count the products run with
        OmpThreads.call(
            () ->
                OneDnn.matmul(
                    OneDnn.plain(rows, k, dnnl_bf16, k, 1),
                    n >= PACKED_MIN_N
                        ? OneDnn.any(k, n, dnnl_bf16)
                        : OneDnn.plain(k, n, dnnl_bf16, n, 1),
                    OneDnn.plain(rows, n, dnnl_f32, n, 1),
                    1f,
                    false));
    try {
      this.packedDesc = OneDnn.copy(dnnl_primitive_desc_query_md(pd, dnnl_query_weights_md, 0));
      long bytes = dnnl_memory_desc_get_size(packedDesc);
      this.packedData = new BytePointer(bytes + ALIGN);
      this.packed = OneDnn.memory(packedDesc, aligned(packedData));
    } finally {
      OneDnn.check(dnnl_primitive_desc_destroy(pd), "dnnl_primitive_desc_destroy");
    }
    reorderOnce(bF32, OneDnn.address(rowMajor));
    Reference.reachabilityFence(rowMajor);
    if (transposed) {
      rowMajor.close();
    }
  }

  private static final int ALIGN = 64;

  // Below this output width B stays row-major bf16: oneDNN 2.5.2's brgemm matmul on
  // avx512_core_bf16 returned wrong columns 32..N-1 from a packed B with 32 < N < 64 and fewer
  // than about 40 rows (tested in PackedBf16MatmulTest); such narrow projections gain little from
  // packing anyway.
  static final int PACKED_MIN_N = 64;

  /** The bytes the packed bf16 B takes. */
  long packedBytes() {
    return dnnl_memory_desc_get_size(packedDesc);
  }

  /** The implementation oneDNN runs for {@code rows} rows (builds that primitive if needed). */
  String impl(int rows) {
    return shape(rows, false).impl();
  }

  /**
   * C ← A·B, or C ← C + A·B when {@code accumulate}. A: float32 [R, K], C: float32 [R, N], both
   * row-major over one block.
   */
  void multiply(INDArray a, INDArray c, boolean accumulate) {
    requireRowMajor(a, "A");
    requireRowMajor(c, "C");
    if (a.columns() != k || c.columns() != n || a.rows() != c.rows()) {
      throw new IllegalArgumentException(
          "bf16 matmul of B ["
              + k
              + ", "
              + n
              + "] cannot take A "
              + java.util.Arrays.toString(a.shape())
              + " into C "
              + java.util.Arrays.toString(c.shape()));
    }
    int rows = a.rows();
    Shape s = shape(rows, accumulate);
    OneDnnThread t = OneDnnThread.get();
    dnnl_memory aF32 = OneDnn.memory(s.aF32(), OneDnn.address(a));
    dnnl_memory aBf16 = OneDnn.memory(s.aBf16(), t.copy(0, rows * k * 2));
    dnnl_memory cF32 = OneDnn.memory(s.c(), OneDnn.address(c));
    try {
      OmpThreads.run(
          () -> {
            t.reorder(s.convertA(), aF32, aBf16);
            t.matmul(s.matmul(), aBf16, packed, cF32);
          });
    } finally {
      dnnl_memory_destroy(aF32);
      dnnl_memory_destroy(aBf16);
      dnnl_memory_destroy(cF32);
      Reference.reachabilityFence(a);
      Reference.reachabilityFence(c);
    }
  }

  private Shape shape(int rows, boolean accumulate) {
    return shapes
        .get()
        .computeIfAbsent(
            rows * 2L + (accumulate ? 1 : 0),
            key -> OmpThreads.call(() -> newShape(rows, accumulate)));
  }

  private Shape newShape(int rows, boolean accumulate) {
    dnnl_memory_desc_t aF32 = OneDnn.plain(rows, k, dnnl_f32, k, 1);
    dnnl_memory_desc_t aBf16 = OneDnn.plain(rows, k, dnnl_bf16, k, 1);
    dnnl_memory_desc_t c = OneDnn.plain(rows, n, dnnl_f32, n, 1);
    dnnl_primitive_desc pd = OneDnn.matmul(aBf16, packedDesc, c, 1f, accumulate);
    try {
      return new Shape(
          aF32, aBf16, c, OneDnn.reorder(aF32, aBf16), OneDnn.primitive(pd), OneDnn.implName(pd));
    } finally {
      dnnl_primitive_desc_destroy(pd);
    }
  }

  private void reorderOnce(dnnl_memory_desc_t bF32, Pointer b) {
    dnnl_memory from = OneDnn.memory(bF32, b);
    try {
      reorder(bF32, from, packedDesc, packed);
    } finally {
      dnnl_memory_destroy(from);
    }
  }

  /**
   * B as float32 [K, N] row-major, read back from the packed bf16 copy: the values the products use
   * (B rounded to bf16), for code that needs the weight itself.
   */
  INDArray unpack() {
    INDArray out = Nd4j.create(DataType.FLOAT, new long[] {k, n}, 'c');
    dnnl_memory_desc_t plain = OneDnn.plain(k, n, dnnl_f32, n, 1);
    dnnl_memory to = OneDnn.memory(plain, OneDnn.address(out));
    try {
      reorder(packedDesc, packed, plain, to);
    } finally {
      dnnl_memory_destroy(to);
      Reference.reachabilityFence(out);
    }
    return out;
  }

  private static void reorder(
      dnnl_memory_desc_t fromDesc, dnnl_memory from, dnnl_memory_desc_t toDesc, dnnl_memory to) {
    OmpThreads.run( // made and run with one thread count (see OmpThreads.call)
        () -> {
          dnnl_primitive reorder = OneDnn.reorder(fromDesc, toDesc);
          try {
            OneDnnThread t = OneDnnThread.get();
            t.reorder(reorder, from, to);
            t.waitAll();
          } finally {
            dnnl_primitive_destroy(reorder);
          }
        });
  }

  private static void requireRowMajor(INDArray x, String name) {
    if (x.rank() != 2
        || x.dataType() != DataType.FLOAT
        || (x.columns() > 1 && x.stride(1) != 1)
        || (x.rows() > 1 && x.stride(0) != x.columns())) {
      throw new IllegalArgumentException(
          "bf16 matmul needs "
              + name
              + " as a row-major float32 matrix but got "
              + x.dataType()
              + " "
              + java.util.Arrays.toString(x.shape())
              + " strides "
              + java.util.Arrays.toString(x.stride()));
    }
  }

  private static Pointer aligned(BytePointer raw) {
    long start = raw.address();
    return OneDnn.at(start + ((ALIGN - (start & (ALIGN - 1))) & (ALIGN - 1)));
  }
}
