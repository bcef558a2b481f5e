package io.loraspark.train.decode;

import io.loraspark.train.model.DecodeKernels;
import io.loraspark.train.model.Kernels;
import io.loraspark.train.model.LayerWeights;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Projection;
import io.loraspark.train.model.precision.Precision;
import java.nio.ByteBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Incremental decoding with a KV cache on the frozen float32 base: one {@link #step} runs the
 * forward pass for a set of token rows ({@link StepRows}) that may belong to different requests,
 * positions and adapter mixes. The frozen projections run once over all rows; each row's low-rank
 * branches use its own adapters (the S-LoRA/Punica layout, Sheng et al. 2023, arXiv:2311.03285;
 * Chen et al. 2023, arXiv:2310.18547); each row writes its keys and values into its request's cache
 * at its position, then attends to positions [0, position] of that cache. So a prompt can be
 * prefilled in one step or in chunks, and requests join and leave between steps.
 *
 * <p>Every row is computed by the same arithmetic whatever else is in the step (see {@link
 * DecodeKernels}): a request's logits are the same bits alone or batched, and however its prompt
 * was chunked. The projections and the head are packed once per base ({@link DecodeWeights}),
 * embeddings, norms and biases read in place from ND4J's buffers; the engine's own buffers grow to
 * the largest step and are reused, so a step allocates nothing.
 *
 * <p>Not thread-safe: one engine per decoding thread; any number may share one {@link ModelWeights}
 * and the same {@link DecodeAdapter}s.
 */
public final class DecodeEngine {
  private static final int P = Projection.values().length;

  private final ModelConfig c;
  private final DecodeWeights packed; // frozen projections and head
  private final ByteBuffer[] biasBuf; // [L*7] or null entries
  private final int[] biasOff;
  private final ByteBuffer[] normBuf; // [2L]: input and post-attention norms
  private final int[] normOff;
  private final ByteBuffer embedBuf;
  private final int embedOff;
  private final ByteBuffer finalNormBuf;
  private final int finalNormOff;
  private final float[] invFreq; // [HD/2]
  private final float attnScale;

  private int cap; // rows the buffers hold
  private float[] x; // residual stream, [R, C]
  private float[] h; // normed input of a block, [R, C]
  private float[] q; // [R, NH*HD]
  private float[] k; // [R, NKV*HD]
  private float[] v; // [R, NKV*HD]
  private float[] attn; // [R, NH*HD]
  private float[] out; // o_proj / down_proj output, [R, C]
  private float[] gate; // [R, F]
  private float[] up; // [R, F]
  // the outputs of each group of projections that read one input, for project(): q, k, v; gate,
  // up; o or down
  private float[][] qkvOut;
  private float[][] gateUpOut;
  private float[][] outOut;
  private final int[] outDims = new int[P];
  private static final Projection[] QKV = {Projection.Q, Projection.K, Projection.V};
  private static final Projection[] GATE_UP = {Projection.GATE, Projection.UP};
  private static final Projection[] O_PROJ = {Projection.O};
  private static final Projection[] DOWN_PROJ = {Projection.DOWN};
  private float[] cos; // [R, HD/2]
  private float[] sin; // [R, HD/2]
  private final StepBranches branches = new StepBranches();
  private final ThreadLocal<float[]> scores = ThreadLocal.withInitial(() -> new float[64]);

  /**
   * @param base a float32 base (not quantized)
   * @throws IllegalArgumentException for a quantized or float64 base, or a JVM without the Vector
   *     API module
   */
  public DecodeEngine(ModelWeights base) {
    this(base, Precision.FP32);
  }

  /**
   * @param precision {@code bf16}: projections and head rounded to bfloat16 ({@code --precision
   *     bf16}), half the bytes read per token, logits within bf16's rounding of the float32
   *     engine's and still the same bits for a row whatever shares its step; {@code fp32} and
   *     {@code auto}: float32 (decoding's default: equal to the full forward, llama2.c's ids)
   */
  public DecodeEngine(ModelWeights base, Precision precision) {
    this.c = base.config();
    ModelConfig.require(
        DecodeKernels.available(),
        "KV-cached decoding needs the JDK Vector API: start the JVM with --add-modules"
            + " jdk.incubator.vector (bin/lora-pipeline and conf/spark-defaults.conf do)");
    ModelConfig.require(
        base.quantized() == null && base.embed().dataType() == DataType.FLOAT,
        "KV-cached decoding runs on a float32 base; this one is %s",
        base.quantized() != null ? "quantized" : base.embed().dataType());
    int layers = c.numLayers();
    packed = DecodeWeights.of(base, precision == Precision.BF16 ? Precision.BF16 : Precision.FP32);
    biasBuf = new ByteBuffer[layers * P];
    biasOff = new int[layers * P];
    normBuf = new ByteBuffer[2 * layers];
    normOff = new int[2 * layers];
    for (int l = 0; l < layers; l++) {
      LayerWeights w = base.layers().get(l);
      for (Projection p : Projection.values()) {
        int i = l * P + p.ordinal();
        INDArray b = ModelWeights.bias(w, p);
        if (b != null) {
          biasBuf[i] = buffer(b);
          biasOff[i] = Kernels.offset(b);
        }
      }
      normBuf[2 * l] = buffer(w.inputNorm());
      normOff[2 * l] = Kernels.offset(w.inputNorm());
      normBuf[2 * l + 1] = buffer(w.postNorm());
      normOff[2 * l + 1] = Kernels.offset(w.postNorm());
    }
    embedBuf = buffer(base.embed());
    embedOff = Kernels.offset(base.embed());
    finalNormBuf = buffer(base.finalNorm());
    finalNormOff = Kernels.offset(base.finalNorm());
    int half = c.headDim() / 2;
    invFreq = new float[half];
    for (int i = 0; i < half; i++) { // as Rope: float32 angles, as transformers computes them
      invFreq[i] = (float) (1.0 / Math.pow(c.ropeTheta(), (2.0 * i) / c.headDim()));
    }
    attnScale = (float) (1.0 / Math.sqrt(c.headDim()));
    grow(4);
  }

  static ByteBuffer buffer(INDArray a) {
    ModelConfig.require(
        Kernels.vector(a),
        "KV-cached decoding reads float32 row-major weights under 2 GiB each; an array of shape %s"
            + " is not",
        java.util.Arrays.toString(a.shape()));
    return Kernels.buffer(a);
  }

  /** The precision of the packed projections: fp32 or bf16. */
  public Precision precision() {
    return packed.precision;
  }

  public ModelConfig config() {
    return c;
  }

  private void grow(int rows) {
    if (rows <= cap) {
      return;
    }
    cap = Math.max(rows, cap * 2);
    x = new float[cap * c.hiddenSize()];
    h = new float[cap * c.hiddenSize()];
    out = new float[cap * c.hiddenSize()];
    q = new float[cap * c.qDim()];
    attn = new float[cap * c.qDim()];
    k = new float[cap * c.kvDim()];
    v = new float[cap * c.kvDim()];
    gate = new float[cap * c.intermediateSize()];
    up = new float[cap * c.intermediateSize()];
    qkvOut = new float[][] {q, k, v};
    gateUpOut = new float[][] {gate, up};
    outOut = new float[][] {out};
    cos = new float[cap * (c.headDim() / 2)];
    sin = new float[cap * (c.headDim() / 2)];
  }

  /**
   * The forward pass of one step: writes every row's keys and values into its cache and the wanted
   * rows' next-token logits into {@link StepRows#logits()}.
   *
   * @throws IllegalArgumentException for a token outside the vocabulary, a position outside its
   *     cache, or an adapter built for another base shape
   */
  public void step(StepRows rows) {
    int n = rows.count;
    check(rows);
    grow(n);
    branches.plan(rows);
    int cDim = c.hiddenSize();
    for (int r = 0; r < n; r++) {
      DecodeKernels.embed(embedBuf, embedOff, rows.tokens[r], cDim, x, r * cDim);
      angles(rows.positions[r], r);
    }
    for (int l = 0; l < c.numLayers(); l++) {
      layer(l, rows);
    }
    DecodeKernels.rmsNorm(x, finalNormBuf, finalNormOff, (float) c.rmsNormEps(), h, n, cDim);
    logits(rows);
  }

  /**
   * One decoder layer over all rows, as {@code Transformer.layerForward}: attention block, then the
   * MLP block, each a residual add.
   */
  private void layer(int l, StepRows rows) {
    int n = rows.count;
    int cDim = c.hiddenSize();
    float eps = (float) c.rmsNormEps();
    // attention: h = norm(x); q, k, v (+ branches); rotary; write k, v; attend; o_proj
    DecodeKernels.rmsNorm(x, normBuf[2 * l], normOff[2 * l], eps, h, n, cDim);
    project(l, QKV, h, qkvOut, rows);
    int half = c.headDim() / 2;
    int kvDim = c.kvDim();
    for (int r = 0; r < n; r++) {
      DecodeKernels.rope(q, r * c.qDim(), c.numHeads(), c.headDim(), cos, sin, r * half);
      DecodeKernels.rope(k, r * kvDim, c.numKvHeads(), c.headDim(), cos, sin, r * half);
      rows.caches[r].put(l, rows.positions[r], k, v, r * kvDim, kvDim);
    }
    attend(l, rows);
    project(l, O_PROJ, attn, outOut, rows);
    addInto(x, out, n * cDim);
    // MLP: h = norm(x); x += down(silu(gate(h)) * up(h))
    DecodeKernels.rmsNorm(x, normBuf[2 * l + 1], normOff[2 * l + 1], eps, h, n, cDim);
    project(l, GATE_UP, h, gateUpOut, rows);
    DecodeKernels.siluMul(gate, up, n * c.intermediateSize());
    project(l, DOWN_PROJ, gate, outOut, rows);
    addInto(x, out, n * cDim);
  }

  /** Each row attends over its own cache, rows split over the kernel threads. */
  private void attend(int l, StepRows rows) {
    int qDim = c.qDim();
    long work = 0;
    for (int r = 0; r < rows.count; r++) {
      work += (long) (rows.positions[r] + 1) * c.kvDim() * 2;
    }
    DecodeKernels.parallel(
        rows.count,
        work / Math.max(1, rows.count),
        (from, to) -> {
          for (int r = from; r < to; r++) {
            int len = rows.positions[r] + 1;
            float[] s = scores.get();
            if (s.length < len) {
              s = new float[Math.max(len, s.length * 2)];
              scores.set(s);
            }
            KvCache cache = rows.caches[r];
            DecodeKernels.attend(
                q,
                r * qDim,
                cache.keys[l],
                cache.values[l],
                cache.capacity(),
                len,
                c.numHeads(),
                c.numKvHeads(),
                c.headDim(),
                attnScale,
                s,
                attn,
                r * qDim);
          }
        });
  }

  /**
   * {@code ys[j] = x W_j^T} for every row and each of the projections {@code ps}, which read the
   * same input, then each row's adapter branches, then the biases: the base products once for all
   * rows, the branches adapter by adapter and the group at once ({@link StepBranches}).
   */
  private void project(int l, Projection[] ps, float[] in, float[][] ys, StepRows rows) {
    int n = rows.count;
    int inDim = ps[0].inFeatures(c);
    for (int j = 0; j < ps.length; j++) {
      outDims[j] = ps[j].outFeatures(c);
      packed.project(l * P + ps[j].ordinal(), outDims[j], inDim, in, n, ys[j]);
    }
    branches.apply(l, ps, in, inDim, ys, outDims);
    for (int j = 0; j < ps.length; j++) {
      int i = l * P + ps[j].ordinal();
      if (biasBuf[i] != null) {
        DecodeKernels.addBias(biasBuf[i], biasOff[i], ys[j], n, outDims[j]);
      }
    }
  }

  /** The wanted rows' final hidden states times the head: [logitCount, V]. */
  private void logits(StepRows rows) {
    int cDim = c.hiddenSize();
    int vocab = c.vocabSize();
    for (int s = 0; s < rows.logitCount; s++) { // compact the wanted rows to the front of out
      System.arraycopy(h, rows.logitRows[s] * cDim, out, s * cDim, cDim);
    }
    if (rows.logits.length < rows.logitCount * vocab) {
      rows.logits = new float[Math.max(rows.logitCount, 4) * vocab];
    }
    packed.head(vocab, cDim, out, rows.logitCount, rows.logits);
  }

  /** cos and sin of position {@code pos}'s angles into row {@code r} of the tables. */
  private void angles(int pos, int r) {
    int half = invFreq.length;
    for (int i = 0; i < half; i++) {
      float angle = pos * invFreq[i]; // float32, as Rope.fillTables
      cos[r * half + i] = (float) Math.cos(angle);
      sin[r * half + i] = (float) Math.sin(angle);
    }
  }

  private static void addInto(float[] acc, float[] add, int n) {
    DecodeKernels.addScaled(acc, 0, add, 0, 1f, n);
  }

  private void check(StepRows rows) {
    for (int r = 0; r < rows.count; r++) {
      int token = rows.tokens[r];
      int pos = rows.positions[r];
      KvCache cache = rows.caches[r];
      if (token < 0 || token >= c.vocabSize()) {
        throw new IllegalArgumentException(
            "row "
                + r
                + ": token id "
                + token
                + " is outside the vocabulary [0, "
                + c.vocabSize()
                + ")");
      }
      if (cache == null || pos < 0 || pos >= cache.capacity()) {
        throw new IllegalArgumentException(
            "row "
                + r
                + ": position "
                + pos
                + " is outside its KV cache of "
                + (cache == null ? 0 : cache.capacity())
                + " positions");
      }
      if (rows.mixes[r] == null) {
        rows.mixes[r] = AdapterMix.NONE;
      }
      for (DecodeAdapter a : rows.mixes[r].adapters()) {
        if (!a.fits(c)) {
          throw new IllegalArgumentException(
              "adapter '"
                  + a.name()
                  + "' was made for a base of another shape than this one ("
                  + c.numLayers()
                  + " layers, hidden "
                  + c.hiddenSize()
                  + ")");
        }
      }
    }
  }
}
