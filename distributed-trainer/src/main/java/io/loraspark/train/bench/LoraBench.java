package io.loraspark.train.bench;

import io.loraspark.train.loop.KernelWarmup;
import io.loraspark.train.lora.FusedLora;
import io.loraspark.train.lora.LoraConfig;
import io.loraspark.train.lora.LoraWeights;
import io.loraspark.train.model.Batch;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.LossStats;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Transformer;
import io.loraspark.train.model.Workspace;
import io.loraspark.train.model.precision.Bf16Gemms;
import io.loraspark.train.model.precision.Precision;
import io.loraspark.train.model.quant.BaseQuant;
import io.loraspark.train.model.quant.QuantizedLinears;
import io.loraspark.train.optim.AdamW;
import io.loraspark.train.optim.AdamWConfig;
import io.loraspark.train.optim.GradClip;
import io.loraspark.train.spark.NativeThreads;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * Trains K LoRA adapters fused on a synthetic model (or a checkpoint's weights) with the engine's
 * own components (the {@link Transformer} forward/loss/backward, {@link FusedLora}, {@link
 * GradClip}, {@link AdamW}) and times each phase of every step. It is the same step the fused
 * trainer runs, minus data loading, evaluation and checkpoints, and the same work the PyTorch peer
 * baseline times: random tokens, every position scored, AdamW (lr 1e-4, weight decay 0.01), LoRA
 * alpha = 2·rank, no dropout.
 *
 * <p>The estimate's runtime term is the resident memory after the JVM, ND4J and the kernel warm-up
 * ({@link KernelWarmup}) have started and their garbage is collected, before the model is built.
 *
 * <p>Use: {@code LoraBench.run(spec) → BenchResult}; it sets the process's native thread count.
 */
public final class LoraBench {
  static final double LR = 1e-4;
  static final double WEIGHT_DECAY = 0.01;
  static final double MAX_GRAD_NORM = 1.0;

  private LoraBench() {}

  /**
   * Runs {@code spec.warmup()} untimed and {@code spec.steps()} timed steps on synthetic weights.
   */
  public static BenchResult run(BenchSpec spec) {
    return run(spec, null);
  }

  /**
   * Runs {@code spec.warmup()} untimed and {@code spec.steps()} timed steps on the weights of the
   * Hugging Face checkpoint {@code checkpoint} (whose shape must be the spec's), or on synthetic
   * weights when it is null.
   *
   * @throws IllegalArgumentException when the checkpoint is unreadable or of another shape
   */
  public static BenchResult run(BenchSpec spec, Path checkpoint) {
    if (checkpoint != null) {
      spec.requireShapeOf(ModelConfig.load(checkpoint), checkpoint);
    }
    NativeThreads.configure(spec.opThreads(), spec.threads());
    BlasInfo blas = BlasInfo.detect();
    int rows = spec.batch() * spec.adapters();
    long tokens = (long) rows * spec.seq();
    boolean bf16 = spec.precision().resolve(spec.baseQuant() != BaseQuant.NONE) == Precision.BF16;
    GemmPeak peak = GemmPeak.measure(spec.modelConfig(), tokens, bf16);
    KernelWarmup.once();
    long runtime = ProcMemory.settledResidentBytes();
    Transformer model = spec.precision().model(base(spec, checkpoint));
    ModelWeights weights = model.weights();
    Workspace ws = model.newWorkspace(rows, spec.seq(), spec.recompute());
    List<LoraWeights> adapters = new ArrayList<>();
    List<AdamW> optimizers = new ArrayList<>();
    List<FusedLora.Slot> slots = new ArrayList<>();
    LoraConfig lora = new LoraConfig(spec.rank(), 2.0 * spec.rank(), 0.0, spec.targets(), false);
    for (int k = 0; k < spec.adapters(); k++) {
      LoraWeights w = LoraWeights.init(weights.config(), lora, spec.seed() + 1 + k, DataType.FLOAT);
      adapters.add(w);
      optimizers.add(AdamW.forLora(new AdamWConfig(LR, 0.9, 0.999, 1e-8, WEIGHT_DECAY, 1.0), w));
      long start = spec.tokensPerAdapter() * k;
      slots.add(new FusedLora.Slot(w, (int) start, (int) (start + spec.tokensPerAdapter()), k));
    }
    Batch batch = randomBatch(spec, weights.config(), rows);
    FusedLora fused = new FusedLora(model.adapterGemm());
    for (int i = 0; i < spec.warmup(); i++) {
      step(model, fused, slots, batch, ws, adapters, optimizers, i);
    }
    double[][] phases = new double[spec.steps()][];
    long t0 = System.nanoTime();
    for (int i = 0; i < spec.steps(); i++) {
      phases[i] = step(model, fused, slots, batch, ws, adapters, optimizers, spec.warmup() + i);
    }
    double seconds = (System.nanoTime() - t0) / 1e9;
    long perAdapter = adapters.get(0).parameterCount() * Float.BYTES * 5; // w, grad, m, v, scratch
    long packed = bf16 ? Bf16Gemms.of(weights).packedBytes() : 0;
    BenchResult.Memory memory =
        new BenchResult.Memory(
            ProcMemory.peakResidentBytes(),
            runtime,
            weights.totalBytes() + packed,
            perAdapter,
            ws.bytes() + (bf16 ? Bf16Gemms.threadCopyBytes() : 0));
    return new BenchResult(
        spec,
        checkpoint == null ? "synthetic" : checkpoint.toString(),
        blas,
        tokens * spec.steps() / seconds,
        new BenchResult.Split(
            median(phases, 3), median(phases, 0), median(phases, 1), median(phases, 2)),
        phases[spec.steps() - 1][4],
        FlopCount.perStep(weights.config(), spec, tokens),
        peak,
        memory,
        model.precision(),
        bf16
            ? "onednn " + Bf16Gemms.of(weights).impl(rows * spec.seq())
            : "openblas " + blas.coreName());
  }

  /** The base: the checkpoint's weights or synthetic ones. */
  private static ModelWeights base(BenchSpec spec, Path checkpoint) {
    if (checkpoint == null) {
      ModelWeights synthetic = SyntheticModel.create(spec.modelConfig(), spec.seed());
      if (spec.baseQuant() == BaseQuant.NONE) {
        return synthetic;
      }
      ModelWeights quantized = QuantizedLinears.quantize(synthetic, spec.baseQuant());
      synthetic.layers().forEach(QuantizedLinears::closeProjections); // only the codes are kept
      return quantized;
    }
    return CheckpointLoader.load(checkpoint, spec.baseQuant());
  }

  /** One training step; returns {forward+loss, backward, optimizer, total} in ms and the loss. */
  private static double[] step(
      Transformer model,
      FusedLora fused,
      List<FusedLora.Slot> slots,
      Batch batch,
      Workspace ws,
      List<LoraWeights> adapters,
      List<AdamW> optimizers,
      int step) {
    long t0 = System.nanoTime();
    fused.bind(slots, true, step);
    model.forward(batch, fused, ws);
    LossStats stats = model.loss(batch, ws);
    long t1 = System.nanoTime();
    model.backward(batch, fused, ws, stats);
    long t2 = System.nanoTime();
    for (int k = 0; k < adapters.size(); k++) {
      GradClip.clipByGlobalNorm(optimizers.get(k).grads(), MAX_GRAD_NORM);
      optimizers.get(k).step(LR);
      adapters.get(k).zeroGrad();
    }
    long t3 = System.nanoTime();
    return new double[] {
      (t1 - t0) / 1e6,
      (t2 - t1) / 1e6,
      (t3 - t2) / 1e6,
      (t3 - t0) / 1e6,
      stats.totalNll() / stats.totalCount()
    };
  }

  /** Random token ids, every next token scored, adapter k on rows [k·B, (k+1)·B). */
  private static Batch randomBatch(BenchSpec spec, ModelConfig c, int rows) {
    SplittableRandom rnd = new SplittableRandom(spec.seed());
    List<int[]> ids = new ArrayList<>();
    int[] groups = new int[rows];
    for (int r = 0; r < rows; r++) {
      ids.add(rnd.ints(spec.seq(), 0, c.vocabSize()).toArray());
      groups[r] = r / spec.batch();
    }
    return Batch.padded(ids, null, 0, groups, spec.adapters(), spec.seq());
  }

  private static double median(double[][] phases, int column) {
    double[] v = Arrays.stream(phases).mapToDouble(p -> p[column]).sorted().toArray();
    return v.length % 2 == 1 ? v[v.length / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
  }
}
