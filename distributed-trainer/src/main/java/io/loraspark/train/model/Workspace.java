package io.loraspark.train.model;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Every buffer one forward/backward pass of a fixed batch shape needs, allocated once and reused
 * for every step of that shape: the saved activations of each layer and the scratch space of the
 * backward pass. Not thread-safe: one workspace per training thread.
 *
 * <p>With {@code recompute} (activation checkpointing) only each layer's input, the residual
 * stream, is kept for every layer; all layers share one set of activation buffers, and the backward
 * pass recomputes a layer's forward from its input just before that layer's backward. The saved
 * activations then cost one layer instead of L (the attention probabilities alone are NH·T floats
 * per token per layer, so this is what bounds memory at long sequences), for about one more forward
 * pass of compute.
 */
public final class Workspace {
  final int rows; // B
  final int seqLen; // T
  final int tokens; // N = B*T
  final boolean recompute; // layers share one LayerActivations, rebuilt in backward

  final INDArray[] residual; // L+1 residual streams, [N, C]; [0] = embeddings
  final LayerActivations[] layers;
  final INDArray rInvFinal; // [N, 1]
  final INDArray hFinal; // [N, C]
  final INDArray logits; // [N, V]; exp(logit - row max) of scored rows after the loss
  final ModelKernels kernels; // fused or ND4J, chosen once for this workspace's dtype
  final Attention attention; // with its views of this workspace's head arrays
  final int[] targets; // next-token target per row, -1 where unscored
  final double[] nll; // per-row negative log-likelihood of the last loss
  final double[] invSum; // per-row 1 / sum of exp(logit - row max), for the loss backward
  final double[] rowWeight; // per-row dLoss/dnll of the last backward

  final INDArray mask; // additive attention mask, [X, G*T, T]
  final INDArray cosQ; // [N*NH, HD]
  final INDArray sinQ; // [N*NH, HD]
  final INDArray cosK; // [N*NKV, HD]
  final INDArray sinK; // [N*NKV, HD]
  final INDArray ropeQ1; // scratch [N*NH, HD]
  final INDArray ropeQ2; // scratch [N*NH, HD]
  final INDArray ropeK1; // scratch [N*NKV, HD]
  final INDArray ropeK2; // scratch [N*NKV, HD]

  // backward scratch
  final INDArray dx; // [N, C]
  final INDArray dh; // [N, C]
  final INDArray scratchC1; // [N, C]
  final INDArray scratchC2; // [N, C]
  final INDArray dAttn; // [N, NH*HD]
  final INDArray dq; // [N, NH*HD]
  final INDArray dk; // [N, NKV*HD]
  final INDArray dv; // [N, NKV*HD]
  final INDArray dQp; // [X, G*T, HD]
  final INDArray dKp; // [X, T, HD]
  final INDArray dVp; // [X, T, HD]
  final INDArray dOp; // [X, G*T, HD]
  final INDArray dP; // [X, G*T, T]
  final INDArray dAct; // [N, F]
  final INDArray dGate; // [N, F]
  final INDArray dUp; // [N, F]

  /** Saved activations of one decoder layer. */
  static final class LayerActivations {
    final INDArray rInv1; // [N, 1]
    final INDArray h1; // normed input of attention, [N, C]
    final INDArray q; // [N, NH*HD]
    final INDArray k; // [N, NKV*HD]
    final INDArray v; // [N, NKV*HD]
    final INDArray qHeads; // rotated queries, [X, G*T, HD]
    final INDArray kHeads; // rotated keys, [X, T, HD]
    final INDArray vHeads; // [X, T, HD]
    final INDArray probs; // attention probabilities, [X, G*T, T]
    final INDArray oHeads; // [X, G*T, HD]
    final INDArray attn; // input of o_proj, [N, NH*HD]
    final INDArray mid; // residual after attention, [N, C]
    final INDArray rInv2; // [N, 1]
    final INDArray h2; // normed input of the MLP, [N, C]
    final INDArray gate; // [N, F]
    final INDArray up; // [N, F]
    final INDArray sig; // sigmoid(gate), [N, F]
    final INDArray act; // silu(gate) * up, input of down_proj, [N, F]

    LayerActivations(ModelConfig c, DataType dt, int b, int t) {
      int n = b * t;
      int x = b * c.numKvHeads();
      int gt = (c.numHeads() / c.numKvHeads()) * t;
      rInv1 = Nd4j.create(dt, n, 1);
      h1 = Nd4j.create(dt, n, c.hiddenSize());
      q = Nd4j.create(dt, n, c.qDim());
      k = Nd4j.create(dt, n, c.kvDim());
      v = Nd4j.create(dt, n, c.kvDim());
      qHeads = Nd4j.create(dt, x, gt, c.headDim());
      kHeads = Nd4j.create(dt, x, t, c.headDim());
      vHeads = Nd4j.create(dt, x, t, c.headDim());
      probs = Nd4j.create(dt, x, gt, t);
      oHeads = Nd4j.create(dt, x, gt, c.headDim());
      attn = Nd4j.create(dt, n, c.qDim());
      mid = Nd4j.create(dt, n, c.hiddenSize());
      rInv2 = Nd4j.create(dt, n, 1);
      h2 = Nd4j.create(dt, n, c.hiddenSize());
      gate = Nd4j.create(dt, n, c.intermediateSize());
      up = Nd4j.create(dt, n, c.intermediateSize());
      sig = Nd4j.create(dt, n, c.intermediateSize());
      act = Nd4j.create(dt, n, c.intermediateSize());
    }
  }

  Workspace(ModelConfig c, DataType dt, int rows, int seqLen, boolean recompute) {
    this(c, dt, rows, seqLen, recompute, ModelKernels.of(c, dt), BatchedGemms.perMatrix());
  }

  /**
   * A workspace whose passes run {@code kernels} (tests pick the ND4J ones for float32 this way)
   * and whose attention GEMMs run {@code attentionGemms}.
   */
  Workspace(
      ModelConfig c,
      DataType dt,
      int rows,
      int seqLen,
      boolean recompute,
      ModelKernels kernels,
      BatchedGemms attentionGemms) {
    this.rows = rows;
    this.seqLen = seqLen;
    this.tokens = rows * seqLen;
    this.recompute = recompute;
    int n = tokens;
    int x = rows * c.numKvHeads();
    int gt = (c.numHeads() / c.numKvHeads()) * seqLen;
    int hd = c.headDim();
    residual = new INDArray[c.numLayers() + 1];
    layers = new LayerActivations[c.numLayers()];
    for (int l = 0; l <= c.numLayers(); l++) {
      residual[l] = Nd4j.create(dt, n, c.hiddenSize());
    }
    LayerActivations shared = recompute ? new LayerActivations(c, dt, rows, seqLen) : null;
    for (int l = 0; l < c.numLayers(); l++) {
      layers[l] = recompute ? shared : new LayerActivations(c, dt, rows, seqLen);
    }
    rInvFinal = Nd4j.create(dt, n, 1);
    hFinal = Nd4j.create(dt, n, c.hiddenSize());
    logits = Nd4j.create(dt, n, c.vocabSize());
    this.kernels = kernels;
    attention = new Attention(c, rows, seqLen, kernels, attentionGemms);
    targets = new int[n];
    nll = new double[n];
    invSum = new double[n];
    rowWeight = new double[n];
    mask = Nd4j.create(dt, x, gt, seqLen);
    cosQ = Nd4j.create(dt, (long) n * c.numHeads(), hd);
    sinQ = Nd4j.create(dt, (long) n * c.numHeads(), hd);
    ropeQ1 = Nd4j.create(dt, (long) n * c.numHeads(), hd);
    ropeQ2 = Nd4j.create(dt, (long) n * c.numHeads(), hd);
    cosK = Nd4j.create(dt, (long) n * c.numKvHeads(), hd);
    sinK = Nd4j.create(dt, (long) n * c.numKvHeads(), hd);
    ropeK1 = Nd4j.create(dt, (long) n * c.numKvHeads(), hd);
    ropeK2 = Nd4j.create(dt, (long) n * c.numKvHeads(), hd);
    dx = Nd4j.create(dt, n, c.hiddenSize());
    dh = Nd4j.create(dt, n, c.hiddenSize());
    scratchC1 = Nd4j.create(dt, n, c.hiddenSize());
    scratchC2 = Nd4j.create(dt, n, c.hiddenSize());
    dAttn = Nd4j.create(dt, n, c.qDim());
    dq = Nd4j.create(dt, n, c.qDim());
    dk = Nd4j.create(dt, n, c.kvDim());
    dv = Nd4j.create(dt, n, c.kvDim());
    dQp = Nd4j.create(dt, x, gt, hd);
    dKp = Nd4j.create(dt, x, seqLen, hd);
    dVp = Nd4j.create(dt, x, seqLen, hd);
    dOp = Nd4j.create(dt, x, gt, hd);
    dP = Nd4j.create(dt, x, gt, seqLen);
    dAct = Nd4j.create(dt, n, c.intermediateSize());
    dGate = Nd4j.create(dt, n, c.intermediateSize());
    dUp = Nd4j.create(dt, n, c.intermediateSize());
  }

  /** B, the number of rows this workspace was sized for. */
  public int rows() {
    return rows;
  }

  /** T, the sequence length this workspace was sized for. */
  public int seqLen() {
    return seqLen;
  }

  /** Whether backward recomputes each layer's activations (see the class comment). */
  public boolean recomputes() {
    return recompute;
  }

  /**
   * Bytes of every buffer this workspace holds (saved activations and backward scratch), found by
   * reflection over its array fields so that a buffer added later is counted too.
   */
  public long bytes() {
    long n = 0;
    for (Object o : fieldValues(this)) {
      if (o instanceof INDArray a) {
        n += a.length() * a.dataType().width();
      } else if (o instanceof INDArray[] arrays) {
        for (INDArray a : arrays) {
          n += a.length() * a.dataType().width();
        }
      } else if (o instanceof LayerActivations[] acts) {
        for (LayerActivations act : java.util.Set.copyOf(java.util.Arrays.asList(acts))) {
          for (Object f : fieldValues(act)) {
            n += f instanceof INDArray a ? a.length() * a.dataType().width() : 0;
          }
        }
      }
    }
    return n;
  }

  private static java.util.List<Object> fieldValues(Object o) {
    java.util.List<Object> out = new java.util.ArrayList<>();
    for (java.lang.reflect.Field f : o.getClass().getDeclaredFields()) {
      try {
        out.add(f.get(o));
      } catch (IllegalAccessException e) {
        throw new IllegalStateException("cannot read workspace field " + f.getName(), e);
      }
    }
    return out;
  }

  /** The logits of the last forward pass, [N, V] (overwritten by {@link Transformer#loss}). */
  public INDArray logits() {
    return logits;
  }
}
