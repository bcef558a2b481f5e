package io.loraspark.train.model.precision;

import static org.bytedeco.dnnl.global.dnnl.*;

import java.util.Arrays;
import org.bytedeco.dnnl.const_dnnl_op_desc_t;
import org.bytedeco.dnnl.dnnl_engine;
import org.bytedeco.dnnl.dnnl_matmul_desc_t;
import org.bytedeco.dnnl.dnnl_memory;
import org.bytedeco.dnnl.dnnl_memory_desc_t;
import org.bytedeco.dnnl.dnnl_post_ops;
import org.bytedeco.dnnl.dnnl_primitive;
import org.bytedeco.dnnl.dnnl_primitive_attr;
import org.bytedeco.dnnl.dnnl_primitive_desc;
import org.bytedeco.dnnl.dnnl_stream;
import org.bytedeco.dnnl.dnnl_version_t;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.PointerPointer;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * oneDNN (2.5, through JavaCPP's {@code org.bytedeco:dnnl} preset) in this JVM: loaded once, on
 * first use, after ND4J so that both share ND4J's OpenMP runtime; one CPU engine. {@link #probe}
 * says whether it loaded and which instruction set it will use ({@code dnnl_get_effective_cpu_isa},
 * which honours {@code ONEDNN_MAX_CPU_ISA}). The C API is used directly: every call's status is
 * checked by {@link #check}.
 */
public final class OneDnn {
  /**
   * What this JVM's oneDNN offers.
   *
   * @param failure why oneDNN could not be loaded, empty when it was
   * @param isa the effective ISA as {@code dnnl_cpu_isa_*} (0 when not loaded)
   * @param version oneDNN's version, e.g. {@code 2.5.2}
   */
  public record Probe(String failure, int isa, String version) {
    public boolean loaded() {
      return failure.isEmpty();
    }

    /** Whether the effective ISA includes AMX's bf16 tiles (the only ISA where bf16 is faster). */
    public boolean amx() {
      return loaded() && (isa & AMX) == AMX;
    }

    /** The ISA's oneDNN name, e.g. {@code avx512_core_bf16}. */
    public String isaName() {
      return loaded() ? OneDnn.isaName(isa) : "none";
    }
  }

  // the ISA bit sets of dnnl_cpu_isa_t: each value includes the bits of the ones below it
  static final int AMX = 0x3e7; // dnnl_cpu_isa_avx512_core_amx

  private static final Object LOCK = new Object();
  private static volatile Probe probe;
  private static dnnl_engine engine;

  private OneDnn() {}

  /** Loads oneDNN if this JVM has not tried yet and reports what it offers (never throws). */
  public static Probe probe() {
    Probe p = probe;
    if (p != null) {
      return p;
    }
    synchronized (LOCK) {
      if (probe == null) {
        probe = load();
      }
      return probe;
    }
  }

  private static Probe load() {
    try {
      Nd4j.getExecutioner(); // ND4J's libgomp first: oneDNN then resolves to the same OpenMP pool
      Loader.load(org.bytedeco.dnnl.global.dnnl.class);
      dnnl_engine e = new dnnl_engine();
      check(dnnl_engine_create(e, dnnl_cpu, 0), "dnnl_engine_create");
      engine = e;
      dnnl_version_t v = dnnl_version();
      return new Probe(
          "", dnnl_get_effective_cpu_isa(), v.major() + "." + v.minor() + "." + v.patch());
    } catch (LinkageError | RuntimeException e) {
      return new Probe(e.getClass().getSimpleName() + ": " + e.getMessage(), 0, "");
    }
  }

  /** The CPU engine. @throws IllegalStateException when oneDNN did not load */
  static dnnl_engine engine() {
    Probe p = probe();
    if (!p.loaded()) {
      throw new IllegalStateException("oneDNN is not available: " + p.failure());
    }
    return engine;
  }

  // dnnl_cpu_isa_* values and their names, richest first
  private static final int[] ISAS = {
    AMX,
    dnnl_cpu_isa_avx512_core_bf16,
    dnnl_cpu_isa_avx512_core_vnni,
    dnnl_cpu_isa_avx512_core,
    dnnl_cpu_isa_avx2_vnni,
    dnnl_cpu_isa_avx2,
    dnnl_cpu_isa_avx,
    dnnl_cpu_isa_sse41
  };
  private static final String[] ISA_NAMES = {
    "avx512_core_amx",
    "avx512_core_bf16",
    "avx512_core_vnni",
    "avx512_core",
    "avx2_vnni",
    "avx2",
    "avx",
    "sse41"
  };

  /** The name of a {@code dnnl_cpu_isa_*} value. */
  static String isaName(int isa) {
    for (int i = 0; i < ISAS.length; i++) {
      if (ISAS[i] == isa) {
        return ISA_NAMES[i];
      }
    }
    return "0x" + Integer.toHexString(isa);
  }

  /**
   * @throws IllegalStateException naming the call when {@code status} is not success
   */
  static void check(int status, String call) {
    if (status != dnnl_success) {
      throw new IllegalStateException(call + " failed with oneDNN status " + status);
    }
  }

  /** A plain 2-D descriptor: [rows, cols] of {@code dataType} with the given element strides. */
  static dnnl_memory_desc_t plain(long rows, long cols, int dataType, long rowStride, long step) {
    dnnl_memory_desc_t md = new dnnl_memory_desc_t();
    check(
        dnnl_memory_desc_init_by_strides(
            md, 2, new long[] {rows, cols}, dataType, new long[] {rowStride, step}),
        "dnnl_memory_desc_init_by_strides");
    return md;
  }

  /** A 2-D descriptor whose layout the primitive chooses ({@code format_tag_any}). */
  static dnnl_memory_desc_t any(long rows, long cols, int dataType) {
    dnnl_memory_desc_t md = new dnnl_memory_desc_t();
    check(
        dnnl_memory_desc_init_by_tag(md, 2, new long[] {rows, cols}, dataType, dnnl_format_tag_any),
        "dnnl_memory_desc_init_by_tag");
    return md;
  }

  /** A copy of {@code md} (a queried descriptor lives only as long as its primitive descriptor). */
  static dnnl_memory_desc_t copy(dnnl_memory_desc_t md) {
    dnnl_memory_desc_t out = new dnnl_memory_desc_t();
    Pointer.memcpy(out, md, Loader.sizeof(dnnl_memory_desc_t.class));
    return out;
  }

  /** The implementation a primitive descriptor picked, e.g. {@code brg:avx512_core_amx_bf16}. */
  static String implName(dnnl_primitive_desc pd) {
    PointerPointer<BytePointer> out = new PointerPointer<>(1);
    check(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, out), "impl_info_str");
    return out.get(BytePointer.class, 0).getString();
  }

  /** A memory object over {@code data} (not copied; the caller keeps it alive). */
  static dnnl_memory memory(dnnl_memory_desc_t md, Pointer data) {
    dnnl_memory m = new dnnl_memory();
    check(dnnl_memory_create(m, md, engine(), data), "dnnl_memory_create");
    return m;
  }

  /**
   * A matmul's primitive descriptor (the caller destroys it): {@code c ← alpha · a · b}, or with
   * {@code accumulate} {@code c ← alpha · a · b + c}; alpha is oneDNN's output scale (none when it
   * is 1), the addition a sum post-op.
   *
   * @throws IllegalStateException when oneDNN has no matmul for these types on this CPU, naming its
   *     effective ISA
   */
  static dnnl_primitive_desc matmul(
      dnnl_memory_desc_t a,
      dnnl_memory_desc_t b,
      dnnl_memory_desc_t c,
      float alpha,
      boolean accumulate) {
    dnnl_matmul_desc_t desc = new dnnl_matmul_desc_t();
    check(dnnl_matmul_desc_init(desc, a, b, null, c), "dnnl_matmul_desc_init");
    dnnl_primitive_attr attr = new dnnl_primitive_attr();
    check(dnnl_primitive_attr_create(attr), "dnnl_primitive_attr_create");
    dnnl_post_ops ops = new dnnl_post_ops();
    try {
      if (alpha != 1f) {
        check(
            dnnl_primitive_attr_set_output_scales(attr, 1, 0, new float[] {alpha}),
            "dnnl_primitive_attr_set_output_scales");
      }
      if (accumulate) {
        check(dnnl_post_ops_create(ops), "dnnl_post_ops_create");
        check(dnnl_post_ops_append_sum(ops, 1f), "dnnl_post_ops_append_sum");
        check(dnnl_primitive_attr_set_post_ops(attr, ops), "dnnl_primitive_attr_set_post_ops");
      }
      dnnl_primitive_desc pd = new dnnl_primitive_desc();
      int status =
          dnnl_primitive_desc_create(pd, new const_dnnl_op_desc_t(desc), attr, engine(), null);
      if (status == dnnl_unimplemented) {
        throw new IllegalStateException(
            "oneDNN has no matmul for these types on this CPU (effective ISA "
                + probe().isaName()
                + ")");
      }
      check(status, "matmul primitive descriptor");
      return pd;
    } finally {
      if (accumulate) {
        dnnl_post_ops_destroy(ops);
      }
      dnnl_primitive_attr_destroy(attr);
    }
  }

  /** A reorder primitive (a conversion or a layout change) from {@code from} to {@code to}. */
  static dnnl_primitive reorder(dnnl_memory_desc_t from, dnnl_memory_desc_t to) {
    dnnl_primitive_desc pd = new dnnl_primitive_desc();
    check(
        dnnl_reorder_primitive_desc_create(pd, from, engine(), to, engine(), null),
        "reorder primitive descriptor");
    try {
      return primitive(pd);
    } finally {
      dnnl_primitive_desc_destroy(pd);
    }
  }

  /** A primitive from its descriptor. */
  static dnnl_primitive primitive(dnnl_primitive_desc pd) {
    dnnl_primitive p = new dnnl_primitive();
    check(dnnl_primitive_create(p, pd), "dnnl_primitive_create");
    return p;
  }

  /** A new stream on the engine (one per calling thread: streams are not shared). */
  static dnnl_stream newStream() {
    dnnl_stream s = new dnnl_stream();
    check(dnnl_stream_create(s, engine(), dnnl_stream_default_flags), "dnnl_stream_create");
    return s;
  }

  /**
   * {@code {m, k, n}} of {@code c ← op(a) · op(b)} over the arrays' last two dimensions (op the
   * transpose when its flag is set), after checking that the shapes fit: the same rank, the same
   * leading (batch) dimensions, op(a) [m, k], op(b) [k, n], c [m, n].
   *
   * @throws IllegalArgumentException naming the three shapes, e.g. "gemm cannot take [4, 8] · [9,
   *     5] into [4, 5]"
   */
  static long[] productDims(
      String what, INDArray a, boolean transA, INDArray b, boolean transB, INDArray c) {
    int r = c.rank();
    boolean fits = r >= 2 && a.rank() == r && b.rank() == r;
    for (int d = 0; fits && d < r - 2; d++) {
      fits = a.size(d) == c.size(d) && b.size(d) == c.size(d);
    }
    long m = fits ? c.size(r - 2) : -1;
    long n = fits ? c.size(r - 1) : -1;
    long k = fits ? a.size(transA ? r - 2 : r - 1) : -1;
    if (!fits
        || a.size(transA ? r - 1 : r - 2) != m
        || b.size(transB ? r - 1 : r - 2) != k
        || b.size(transB ? r - 2 : r - 1) != n) {
      throw new IllegalArgumentException(
          what
              + " cannot take "
              + Arrays.toString(a.shape())
              + (transA ? "ᵀ" : "")
              + " · "
              + Arrays.toString(b.shape())
              + (transB ? "ᵀ" : "")
              + " into "
              + Arrays.toString(c.shape()));
    }
    return new long[] {m, k, n};
  }

  /** The native address of x's first element (x must stay reachable while it is used). */
  static Pointer address(INDArray x) {
    return at(x.data().address() + x.offset() * Float.BYTES);
  }

  /** A pointer to {@code where}, owning nothing. */
  static Pointer at(long where) {
    return new Pointer() {
      {
        address = where; // the field: a captured local of the same name would be shadowed by it
      }
    };
  }
}
