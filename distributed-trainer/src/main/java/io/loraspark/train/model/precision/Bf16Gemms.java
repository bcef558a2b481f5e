package io.loraspark.train.model.precision;

import io.loraspark.train.model.BatchedGemms;
import io.loraspark.train.model.FrozenGemms;
import io.loraspark.train.model.Gemm;
import io.loraspark.train.model.LayerWeights;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Projection;
import io.loraspark.train.model.Transformer;
import io.loraspark.train.model.quant.QuantizedLinears;
import java.util.ArrayList;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The GEMMs over frozen weights (projections and LM head) and attention's GEMMs in bf16 (mixed
 * precision as PyTorch's CPU autocast runs them): each frozen weight W [out, in] is packed once per
 * JVM into two oneDNN bf16 layouts, B = Wᵀ for the forward {@code y = x·Wᵀ} and B = W for the input
 * gradient {@code dx = dy·W}, on the first call that needs it; activations are converted to bf16
 * per call, products accumulate and land in f32.
 *
 * <p>Over a base that also serves fp32 readers ({@link #of}), the fp32 weights stay and a bf16 base
 * holds 2x the fp32 bytes of its projections. A training base made by {@link #packedBase} packs
 * every projection at once and drops its fp32 arrays: two packed bf16 copies take the bytes of one
 * fp32 copy, so the base holds what it holds in fp32. The one remaining reader of the weights
 * themselves in training, DoRA's and PiSSA's own copy of W, gets it back from the packed copy
 * ({@link #weight}); decoding, scoring and merging load their own fp32 base.
 */
public final class Bf16Gemms implements FrozenGemms {
  // one per base model per JVM: the packed weights are converted once and shared by every task
  private static final Map<ModelWeights, Bf16Gemms> BY_BASE = new IdentityHashMap<>();

  private final ModelWeights weights; // the fp32 source of lazy packing; null when all are packed
  private final PackedBf16Matmul[][] forward; // [layer][projection], B = Wᵀ [in, out]
  private final PackedBf16Matmul[][] inputGrad; // [layer][projection], B = W [out, in]
  private final PackedBf16Matmul[] head; // the LM head's: [0] B = Headᵀ, [1] B = Head

  private Bf16Gemms(ModelWeights weights) {
    this(
        weights,
        new PackedBf16Matmul[weights.config().numLayers()][Projection.values().length],
        new PackedBf16Matmul[weights.config().numLayers()][Projection.values().length],
        new PackedBf16Matmul[2]);
  }

  private Bf16Gemms(
      ModelWeights weights,
      PackedBf16Matmul[][] forward,
      PackedBf16Matmul[][] inputGrad,
      PackedBf16Matmul[] head) {
    this.weights = weights;
    this.forward = forward;
    this.inputGrad = inputGrad;
    this.head = head;
  }

  /**
   * The bf16 GEMMs over {@code weights}, made once per JVM for each base.
   *
   * @throws IllegalArgumentException for a quantized or non-float32 base
   * @throws IllegalStateException when oneDNN is not available
   */
  public static synchronized Bf16Gemms of(ModelWeights weights) {
    Bf16Gemms made = BY_BASE.get(weights);
    if (made != null) {
      return made;
    }
    requireFloat32(weights, false);
    return BY_BASE.computeIfAbsent(weights, Bf16Gemms::new);
  }

  private static void requireFloat32(ModelWeights weights, boolean quantizedOk) {
    if (weights.quantized() != null && !quantizedOk) {
      throw new IllegalArgumentException(
          "precision bf16 needs a float base (base_quant none), not a quantized one");
    }
    if (weights.embed().dataType() != DataType.FLOAT) {
      throw new IllegalArgumentException(
          "precision bf16 needs a float32 base but it is " + weights.embed().dataType());
    }
    OneDnn.engine(); // fails now, with oneDNN's reason, rather than in the first step
  }

  /**
   * A training base over {@code fp32}'s weights with every projection and the LM head packed now,
   * in both directions, for products of about {@code rows} rows, and its fp32 projection arrays not
   * kept: embeddings, norms and biases are shared with {@code fp32}, whose projection arrays (and
   * untied head) are closed (their memory freed) as they are packed, so {@code fp32} must not be
   * used for them afterwards. A tied head stays as the fp32 embedding, whose rows the step reads,
   * so a tied base holds its head's packed copies on top of the fp32 bytes. Its {@link #of} is the
   * packed GEMMs. A quantized (int8 or NF4) base is dequantised one projection at a time straight
   * into the packed bf16 copies, which replace its codes: the quantized values at bf16 speed, at
   * the memory of a bf16 base (two copies of 2 bytes per weight) rather than of the codes.
   *
   * @throws IllegalArgumentException for a non-float32 base
   * @throws IllegalStateException when oneDNN is not available
   */
  public static synchronized ModelWeights packedBase(ModelWeights fp32, int rows) {
    requireFloat32(fp32, true);
    Bf16Gemms gemms = new Bf16Gemms(fp32);
    int layers = fp32.config().numLayers();
    for (int l = 0; l < layers; l++) {
      for (Projection p : Projection.values()) {
        gemms.packed(gemms.forward, l, p, true, rows);
        gemms.packed(gemms.inputGrad, l, p, false, rows);
        if (fp32.quantized() == null && fp32.linear(l, p).closeable()) {
          fp32.linear(l, p).close(); // freed now: the load peaks at one layer above the fp32 base
        }
      }
    }
    List<LayerWeights> stripped = new ArrayList<>();
    for (LayerWeights w : fp32.layers()) {
      stripped.add(QuantizedLinears.withoutProjections(w));
    }
    gemms.head(true, rows);
    gemms.head(false, rows);
    INDArray head = fp32.lmHead();
    boolean tied = head == fp32.embed(); // the embedding's rows are still read in fp32
    if (!tied && head.closeable()) {
      head.close();
    }
    ModelWeights base =
        new ModelWeights(
            fp32.config(), fp32.embed(), stripped, fp32.finalNorm(), tied ? head : null);
    BY_BASE.put(base, new Bf16Gemms(null, gemms.forward, gemms.inputGrad, gemms.head));
    return base;
  }

  /**
   * Projection {@code p} of layer {@code layer} as float32 [out, in], a new array read back from
   * the packed input-gradient copy: W rounded to bf16, as the GEMMs see it.
   */
  public INDArray weight(int layer, Projection p) {
    return packed(inputGrad, layer, p, false, 1).unpack();
  }

  /** {@code model} with its frozen weights' and attention's GEMMs in bf16 (weights not copied). */
  public static Transformer apply(Transformer model) {
    return model.withGemms(of(model.weights()));
  }

  /**
   * {@code c ← a·wᵀ} in bf16 with {@code w} packed once, as the frozen forward GEMMs run: the work
   * bench times for its bf16 GEMM peak. a [M, K], w [N, K], c [M, N], row-major float32.
   *
   * @throws IllegalStateException when oneDNN is not available
   */
  public static Runnable product(INDArray a, INDArray w, INDArray c) {
    OneDnn.engine();
    PackedBf16Matmul m = new PackedBf16Matmul(w, true, a.rows());
    return () -> m.multiply(a, c, false);
  }

  @Override
  public void forward(int layer, Projection p, INDArray x, INDArray y) {
    packed(forward, layer, p, true, x.rows()).multiply(x, y, false);
  }

  @Override
  public void inputGrad(int layer, Projection p, INDArray dy, INDArray dx, boolean accumulate) {
    packed(inputGrad, layer, p, false, dy.rows()).multiply(dy, dx, accumulate);
  }

  @Override
  public void head(INDArray h, INDArray logits) {
    head(true, h.rows()).multiply(h, logits, false);
  }

  @Override
  public void headInputGrad(INDArray dLogits, INDArray dh) {
    head(false, dLogits.rows()).multiply(dLogits, dh, false);
  }

  /** Attention's score and value GEMMs in bf16 as well, as autocast runs them. */
  @Override
  public BatchedGemms attention() {
    return Bf16BatchedMatmul.INSTANCE;
  }

  /** The adapters' f32 GEMMs through oneDNN as well (faster on their skinny shapes). */
  @Override
  public Gemm adapters() {
    return OneDnnF32Gemm.INSTANCE;
  }

  @Override
  public String precision() {
    return Precision.BF16.key();
  }

  /** oneDNN's implementation of the forward GEMM of q_proj in layer 0 for {@code rows} rows. */
  public String impl(int rows) {
    return packed(forward, 0, Projection.Q, true, rows).impl(rows);
  }

  /**
   * The bytes of the calling thread's bf16 copies of activations (each thread keeps two, grown to
   * its largest operands: a step's dLogits [N, V] or attention probabilities, and queries).
   */
  public static long threadCopyBytes() {
    return OneDnnThread.get().copyBytes();
  }

  /** The bytes of the packed bf16 weights made so far. */
  public synchronized long packedBytes() {
    long n = 0;
    for (PackedBf16Matmul m : head) {
      n += m == null ? 0 : m.packedBytes();
    }
    for (PackedBf16Matmul[][] table : new PackedBf16Matmul[][][] {forward, inputGrad}) {
      for (PackedBf16Matmul[] layer : table) {
        for (PackedBf16Matmul m : layer) {
          n += m == null ? 0 : m.packedBytes();
        }
      }
    }
    return n;
  }

  private synchronized PackedBf16Matmul head(boolean transposed, int rows) {
    int i = transposed ? 0 : 1;
    if (head[i] == null) {
      head[i] = new PackedBf16Matmul(weights.lmHead(), transposed, rows);
    }
    return head[i];
  }

  private PackedBf16Matmul packed(
      PackedBf16Matmul[][] table, int layer, Projection p, boolean transposed, int rows) {
    PackedBf16Matmul m = table[layer][p.ordinal()];
    if (m != null) {
      return m;
    }
    synchronized (this) {
      m = table[layer][p.ordinal()];
      if (m == null) {
        m = new PackedBf16Matmul(weights.linear(layer, p), transposed, rows);
        table[layer][p.ordinal()] = m;
      }
      return m;
    }
  }
}
