package io.loraspark.train.model;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * The Llama-family decoder (Llama, Mistral, Qwen2) over a frozen {@link ModelWeights}: forward
 * pass, causal-LM loss, and a hand-written backward pass that carries gradients through the frozen
 * base to the {@link Adapters} (no gradient is formed for frozen weights).
 *
 * <p>Order of calls per step: {@code forward → loss → backward}, all with the same batch, adapters
 * and {@link Workspace}. Every GEMM writes into a preallocated buffer with transpose flags; the
 * elementwise steps run the workspace's {@link ModelKernels} (fused or ND4J, chosen with the
 * workspace). The model is immutable and may be shared by threads; a workspace may not.
 */
public final class Transformer {
  private final ModelWeights weights;
  private final ModelConfig config;
  private final FrozenGemms gemms; // the frozen projections' GEMMs: fp32 unless set otherwise

  public Transformer(ModelWeights weights) {
    this(weights, FrozenGemms.fp32(weights));
  }

  private Transformer(ModelWeights weights, FrozenGemms gemms) {
    this.weights = weights;
    this.config = weights.config();
    this.gemms = gemms;
  }

  /** This model, same weights, with its frozen projections' GEMMs computed by {@code gemms}. */
  public Transformer withGemms(FrozenGemms gemms) {
    return new Transformer(weights, gemms);
  }

  /** The precision of the frozen weights' and attention's GEMMs: {@code fp32} or {@code bf16}. */
  public String precision() {
    return gemms.precision();
  }

  /** The float32 GEMMs for adapters trained on this model (see {@link FrozenGemms#adapters}). */
  public Gemm adapterGemm() {
    return gemms.adapters();
  }

  public ModelConfig config() {
    return config;
  }

  /**
   * The elementwise kernels float32 models run in this JVM: {@code vector} (fused, JDK Vector API)
   * or {@code nd4j} (one ND4J op per step; float64 models always use it).
   */
  public static String kernels() {
    return Kernels.name();
  }

  public ModelWeights weights() {
    return weights;
  }

  /** Allocates the buffers for batches of {@code rows} x {@code seqLen} tokens. */
  public Workspace newWorkspace(int rows, int seqLen) {
    return newWorkspace(rows, seqLen, false);
  }

  /**
   * Allocates the buffers for batches of {@code rows} x {@code seqLen} tokens; with {@code
   * recompute}, one layer's activations instead of every layer's, rebuilt during backward (same
   * gradients, bit for bit; about one more forward pass of compute).
   */
  public Workspace newWorkspace(int rows, int seqLen, boolean recompute) {
    DataType dt = weights.embed().dataType();
    return new Workspace(
        config, dt, rows, seqLen, recompute, ModelKernels.of(config, dt), gemms.attention());
  }

  /**
   * Forward pass: fills the workspace's activations and {@code logits} [N, V].
   *
   * @throws IllegalArgumentException for a token id outside the vocabulary, a position beyond
   *     max_position_embeddings, or a batch that does not fit the workspace
   */
  public void forward(Batch batch, Adapters adapters, Workspace ws) {
    checkBatch(batch, ws);
    Attention attention = ws.attention;
    attention.fillMask(batch.segments(), ws.mask);
    RopeKernels rope = ws.kernels.rope();
    rope.fillTables(batch.positions(), config.numHeads(), ws.cosQ, ws.sinQ);
    rope.fillTables(batch.positions(), config.numKvHeads(), ws.cosK, ws.sinK);
    Nd4j.pullRows(weights.embed(), ws.residual[0], 1, batch.inputIds());
    for (int l = 0; l < config.numLayers(); l++) {
      layerForward(l, attention, adapters, ws, false);
    }
    INDArray last = ws.residual[config.numLayers()];
    ws.kernels
        .norm()
        .forward(last, weights.finalNorm(), config.rmsNormEps(), ws.rInvFinal, ws.hFinal);
    gemms.head(ws.hFinal, ws.logits);
  }

  /**
   * One decoder layer, reading residual[l] and writing residual[l+1]; when {@code recomputing} for
   * the backward pass, it stops at the input of down_proj, the last activation the layer's backward
   * reads (residual[l+1] is kept, and the adapters keep their own per-module buffers).
   */
  private void layerForward(
      int l, Attention attention, Adapters adapters, Workspace ws, boolean recomputing) {
    LayerWeights w = weights.layers().get(l);
    Workspace.LayerActivations a = ws.layers[l];
    INDArray x = ws.residual[l];
    double eps = config.rmsNormEps();
    NormKernels norm = ws.kernels.norm();
    RopeKernels rope = ws.kernels.rope();
    // attention: h1 = norm(x); q, k, v projections (+ adapters); rotary; core; o_proj
    norm.forward(x, w.inputNorm(), eps, a.rInv1, a.h1);
    linear(l, Projection.Q, a.h1, w.bq(), a.q);
    adapters.forward(l, Projection.Q, a.h1, a.q);
    linear(l, Projection.K, a.h1, w.bk(), a.k);
    adapters.forward(l, Projection.K, a.h1, a.k);
    linear(l, Projection.V, a.h1, w.bv(), a.v);
    adapters.forward(l, Projection.V, a.h1, a.v);
    rope.forward(headRows(a.q, config.numHeads()), ws.cosQ, ws.sinQ, ws.ropeQ1);
    rope.forward(headRows(a.k, config.numKvHeads()), ws.cosK, ws.sinK, ws.ropeK1);
    attention.toHeads(a.q, a.qHeads, config.numHeads());
    attention.toHeads(a.k, a.kHeads, config.numKvHeads());
    attention.toHeads(a.v, a.vHeads, config.numKvHeads());
    attention.forward(a.qHeads, a.kHeads, a.vHeads, ws.mask, a.probs, a.oHeads);
    attention.toRows(a.oHeads, a.attn, config.numHeads());
    linear(l, Projection.O, a.attn, w.bo(), a.mid);
    adapters.forward(l, Projection.O, a.attn, a.mid);
    a.mid.addi(x);
    // MLP: h2 = norm(mid); act = silu(gate(h2)) * up(h2); out = mid + down(act)
    norm.forward(a.mid, w.postNorm(), eps, a.rInv2, a.h2);
    linear(l, Projection.GATE, a.h2, w.bGate(), a.gate);
    adapters.forward(l, Projection.GATE, a.h2, a.gate);
    linear(l, Projection.UP, a.h2, w.bUp(), a.up);
    adapters.forward(l, Projection.UP, a.h2, a.up);
    ws.kernels.silu().forward(a.gate, a.up, a.sig, a.act);
    if (recomputing) {
      return;
    }
    INDArray out = ws.residual[l + 1];
    linear(l, Projection.DOWN, a.act, w.bDown(), out);
    adapters.forward(l, Projection.DOWN, a.act, out);
    out.addi(a.mid);
  }

  /**
   * Causal-LM loss of the last forward pass, per loss group: the sum of next-token negative
   * log-likelihoods (nats) and the number of scored tokens. Leaves the workspace logits of scored
   * rows as {@code exp(logit − row max)}, with each row's 1/Σ kept for {@link #backward}.
   */
  public LossStats loss(Batch batch, Workspace ws) {
    int n = batch.tokens();
    for (int i = 0; i < n; i++) {
      int target = batch.targetOf(i);
      ws.targets[i] = target == Batch.IGNORE ? -1 : target;
    }
    ws.kernels.loss().forward(ws.logits, ws.targets, ws.nll, ws.invSum);
    double[] sums = new double[batch.groups()];
    long[] counts = new long[batch.groups()];
    for (int i = 0; i < n; i++) {
      if (ws.targets[i] < 0) {
        continue;
      }
      int group = batch.rowGroups()[i / batch.seqLen()];
      sums[group] += ws.nll[i];
      counts[group]++;
    }
    return new LossStats(sums, counts);
  }

  /**
   * Backward pass of the objective {@code Σ_g loss_g} (each group's mean loss), after {@link
   * #forward} and {@link #loss} on the same batch and workspace. Adapter gradients accumulate in
   * the adapters; the base gets none.
   */
  public void backward(Batch batch, Adapters adapters, Workspace ws, LossStats stats) {
    lossBackward(batch, ws, stats);
    ws.dx.assign(0);
    INDArray last = ws.residual[config.numLayers()];
    gemms.headInputGrad(ws.logits, ws.dh);
    ws.kernels
        .norm()
        .backward(
            last, weights.finalNorm(), ws.rInvFinal, ws.dh, ws.scratchC1, ws.scratchC2, ws.dx);
    Attention attention = ws.attention;
    for (int l = config.numLayers() - 1; l >= 0; l--) {
      if (ws.recompute && l < config.numLayers() - 1) { // the top layer's are still in place
        layerForward(l, attention, adapters, ws, true);
      }
      layerBackward(l, attention, adapters, ws);
    }
  }

  /** Turns the loss's exponentials into dLoss/dlogits: (softmax − onehot) / count of the group. */
  private void lossBackward(Batch batch, Workspace ws, LossStats stats) {
    int n = batch.tokens();
    double[] rowWeight = ws.rowWeight;
    for (int i = 0; i < n; i++) {
      long count = stats.counts()[batch.rowGroups()[i / batch.seqLen()]];
      rowWeight[i] = ws.targets[i] < 0 || count == 0 ? 0.0 : 1.0 / count;
    }
    ws.kernels.loss().backward(ws.logits, ws.targets, rowWeight, ws.invSum);
  }

  /** Backward of one decoder layer: ws.dx holds dLoss/d residual[l+1] and becomes d residual[l]. */
  private void layerBackward(int l, Attention attention, Adapters adapters, Workspace ws) {
    LayerWeights w = weights.layers().get(l);
    Workspace.LayerActivations a = ws.layers[l];
    INDArray dx = ws.dx;
    NormKernels norm = ws.kernels.norm();
    RopeKernels rope = ws.kernels.rope();
    // MLP: out = mid + down(silu(gate) * up)
    gemms.inputGrad(l, Projection.DOWN, dx, ws.dAct, false);
    adapters.backward(l, Projection.DOWN, a.act, dx, ws.dAct);
    ws.kernels.silu().backward(a.gate, a.up, a.sig, ws.dAct, ws.dGate, ws.dUp);
    gemms.inputGrad(l, Projection.GATE, ws.dGate, ws.dh, false);
    adapters.backward(l, Projection.GATE, a.h2, ws.dGate, ws.dh);
    gemms.inputGrad(l, Projection.UP, ws.dUp, ws.dh, true);
    adapters.backward(l, Projection.UP, a.h2, ws.dUp, ws.dh);
    norm.backward(a.mid, w.postNorm(), a.rInv2, ws.dh, ws.scratchC1, ws.scratchC2, dx);
    // attention: mid = x + o(attn)
    gemms.inputGrad(l, Projection.O, dx, ws.dAttn, false);
    adapters.backward(l, Projection.O, a.attn, dx, ws.dAttn);
    attention.toHeads(ws.dAttn, ws.dOp, config.numHeads());
    attention.backward(
        a.qHeads, a.kHeads, a.vHeads, a.probs, a.oHeads, ws.dOp, ws.dP, ws.dQp, ws.dKp, ws.dVp);
    attention.toRows(ws.dQp, ws.dq, config.numHeads());
    attention.toRows(ws.dKp, ws.dk, config.numKvHeads());
    attention.toRows(ws.dVp, ws.dv, config.numKvHeads());
    rope.backward(headRows(ws.dq, config.numHeads()), ws.cosQ, ws.sinQ, ws.ropeQ1, ws.ropeQ2);
    rope.backward(headRows(ws.dk, config.numKvHeads()), ws.cosK, ws.sinK, ws.ropeK1, ws.ropeK2);
    // layer 0's input is the frozen embedding: its gradient has no use, so only the adapters'
    // parameter gradients are formed there (their dx lands in dh and is discarded)
    boolean inputGrad = l > 0;
    if (inputGrad) {
      gemms.inputGrad(l, Projection.Q, ws.dq, ws.dh, false);
    }
    adapters.backward(l, Projection.Q, a.h1, ws.dq, ws.dh);
    if (inputGrad) {
      gemms.inputGrad(l, Projection.K, ws.dk, ws.dh, true);
    }
    adapters.backward(l, Projection.K, a.h1, ws.dk, ws.dh);
    if (inputGrad) {
      gemms.inputGrad(l, Projection.V, ws.dv, ws.dh, true);
    }
    adapters.backward(l, Projection.V, a.h1, ws.dv, ws.dh);
    if (inputGrad) {
      norm.backward(ws.residual[l], w.inputNorm(), a.rInv1, ws.dh, ws.scratchC1, ws.scratchC2, dx);
    }
  }

  /** y = x W^T + b into the preallocated y, W the frozen weight of projection p of layer l. */
  private void linear(int l, Projection p, INDArray x, INDArray bias, INDArray y) {
    gemms.forward(l, p, x, y);
    if (bias != null) {
      y.addiRowVector(bias);
    }
  }

  /** Views token rows [N, H*HD] as head vectors [N*H, HD] (no copy). */
  private INDArray headRows(INDArray rows, int heads) {
    return rows.reshape((long) rows.rows() * heads, config.headDim());
  }

  private void checkBatch(Batch batch, Workspace ws) {
    ModelConfig.require(
        batch.rows() == ws.rows && batch.seqLen() == ws.seqLen,
        "batch %dx%d does not fit a workspace of %dx%d",
        batch.rows(),
        batch.seqLen(),
        ws.rows,
        ws.seqLen);
    int[] ids = batch.inputIds();
    int[] positions = batch.positions();
    int[] labels = batch.labels();
    int vocab = config.vocabSize();
    int maxPositions = config.maxPositions();
    for (int n = 0; n < ids.length; n++) {
      boolean idOk = ids[n] >= 0 && ids[n] < vocab;
      boolean positionOk = positions[n] >= 0 && positions[n] < maxPositions;
      boolean labelOk = labels[n] == Batch.IGNORE || (labels[n] >= 0 && labels[n] < vocab);
      if (idOk && positionOk && labelOk) {
        continue; // the common case, without boxing the message arguments of every token
      }
      int r = n / batch.seqLen();
      int t = n % batch.seqLen();
      ModelConfig.require(
          idOk,
          "row %d position %d: token id %d is outside the vocabulary [0, %d)",
          r,
          t,
          ids[n],
          vocab);
      ModelConfig.require(
          positionOk,
          "row %d position %d: position %d is beyond max_position_embeddings=%d",
          r,
          t,
          positions[n],
          maxPositions);
      ModelConfig.require(
          labelOk,
          "row %d position %d: label %d must be -100 or inside the vocabulary [0, %d)",
          r,
          t,
          labels[n],
          vocab);
    }
  }
}
