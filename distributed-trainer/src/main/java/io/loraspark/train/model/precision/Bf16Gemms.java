package io.loraspark.train.model.precision;

import io.loraspark.train.model.FrozenGemms;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Projection;
import io.loraspark.train.model.Transformer;
import java.util.IdentityHashMap;
import java.util.Map;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The frozen projections' GEMMs in bf16 (mixed precision as PyTorch's CPU autocast runs them): each
 * weight W [out, in] is packed once per JVM into two oneDNN bf16 layouts, B = Wᵀ for the forward
 * {@code y = x·Wᵀ} and B = W for the input gradient {@code dx = dy·W}, on the first call that needs
 * it; activations are converted to bf16 per call, products accumulate and land in f32.
 *
 * <p>The fp32 weights stay: decoding, merging, scoring and DoRA's and PiSSA's weight norms read
 * them from the same shared base, and the executor's base cache hands the same {@link ModelWeights}
 * to both. Two packed bf16 copies take the bytes of one fp32 copy, so a bf16 base holds 2x the fp32
 * bytes of its projections.
 */
public final class Bf16Gemms implements FrozenGemms {
  // one per base model per JVM: the packed weights are converted once and shared by every task
  private static final Map<ModelWeights, Bf16Gemms> BY_BASE = new IdentityHashMap<>();

  private final ModelWeights weights;
  private final PackedBf16Matmul[][] forward; // [layer][projection], B = Wᵀ [in, out]
  private final PackedBf16Matmul[][] inputGrad; // [layer][projection], B = W [out, in]

  private Bf16Gemms(ModelWeights weights) {
    this.weights = weights;
    int layers = weights.config().numLayers();
    this.forward = new PackedBf16Matmul[layers][Projection.values().length];
    this.inputGrad = new PackedBf16Matmul[layers][Projection.values().length];
  }

  /**
   * The bf16 GEMMs over {@code weights}, made once per JVM for each base.
   *
   * @throws IllegalArgumentException for a quantized or non-float32 base
   * @throws IllegalStateException when oneDNN is not available
   */
  public static synchronized Bf16Gemms of(ModelWeights weights) {
    if (weights.quantized() != null) {
      throw new IllegalArgumentException(
          "precision bf16 needs a float base (base_quant none), not a quantized one");
    }
    if (weights.embed().dataType() != DataType.FLOAT) {
      throw new IllegalArgumentException(
          "precision bf16 needs a float32 base but it is " + weights.embed().dataType());
    }
    OneDnn.engine(); // fails now, with oneDNN's reason, rather than in the first step
    return BY_BASE.computeIfAbsent(weights, Bf16Gemms::new);
  }

  /** {@code model} with its frozen projections' GEMMs in bf16 (the same weights, not copied). */
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
  public String precision() {
    return Precision.BF16.key();
  }

  /** oneDNN's implementation of the forward GEMM of q_proj in layer 0 for {@code rows} rows. */
  public String impl(int rows) {
    return packed(forward, 0, Projection.Q, true, rows).impl(rows);
  }

  /** The bytes of the packed bf16 weights made so far. */
  public synchronized long packedBytes() {
    long n = 0;
    for (PackedBf16Matmul[][] table : new PackedBf16Matmul[][][] {forward, inputGrad}) {
      for (PackedBf16Matmul[] layer : table) {
        for (PackedBf16Matmul m : layer) {
          n += m == null ? 0 : m.packedBytes();
        }
      }
    }
    return n;
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
