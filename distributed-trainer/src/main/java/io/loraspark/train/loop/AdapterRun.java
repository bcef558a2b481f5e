package io.loraspark.train.loop;

import io.loraspark.train.lora.FrozenChain;
import io.loraspark.train.lora.LoraVariant;
import io.loraspark.train.lora.LoraWeights;
import io.loraspark.train.model.TokenRow;
import io.loraspark.train.optim.AdamW;
import io.loraspark.train.optim.AdamWConfig;
import io.loraspark.train.optim.GradClip;
import io.loraspark.train.optim.LrSchedule;
import java.util.ArrayList;
import java.util.List;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * The mutable training state of one adapter in a {@link FusedTrainer}: its weights, optimizer,
 * schedule and data order, where it is (optimizer step, micro-step, loss and tokens of the step so
 * far) and how it ended. {@link FusedTrainer} sequences the adapters; this class owns what one
 * adapter does between micro-steps: {@code accumulate* → update → record} per optimizer step,
 * {@link #fail} when it cannot go on, {@link #restore} from a checkpoint, {@link #result} at the
 * end.
 */
final class AdapterRun {
  final AdapterSpec spec;
  final LoraWeights weights;
  final FrozenChain chain; // the frozen parents, null for a root adapter
  final AdamW optimizer;
  final DataStream data;
  final String dataFingerprint;
  private final LrSchedule schedule;
  final List<StepMetrics> metrics = new ArrayList<>();
  int step; // optimizer steps taken
  int micro; // micro-steps taken
  double lossSum; // Σ of the micro-steps' mean losses since the last optimizer step
  long stepTokens; // scored tokens since the last optimizer step
  String failure = "";
  double evalLoss = Double.NaN;

  AdapterRun(
      AdapterSpec spec,
      LoraWeights weights,
      FrozenChain chain,
      List<TokenRow> train,
      String dataFingerprint) {
    TrainConfig t = spec.train();
    this.spec = spec;
    this.weights = weights;
    this.chain = chain;
    this.dataFingerprint = dataFingerprint;
    this.optimizer =
        new AdamW(
            new AdamWConfig(t.lr(), 0.9, 0.999, 1e-8, t.weightDecay(), t.lrRatio()),
            AdamW.loraParams(weights, t.lrRatio()));
    this.schedule = new LrSchedule(t.schedule(), t.lr(), t.warmupSteps(), t.steps(), 0.0);
    this.data = new DataStream(train, t.seed());
  }

  /** The optimizer step this run stops at: its step count, or {@code stopAt} if sooner. */
  int target(int stopAt) {
    return Math.min(spec.train().steps(), stopAt);
  }

  /** Whether it still trains: not failed and short of {@link #target}. */
  boolean active(int stopAt) {
    return failure.isEmpty() && step < target(stopAt);
  }

  /** The scheduled learning rate of the next optimizer step. */
  double lr() {
    return schedule.lr(step);
  }

  /** Counts a micro-step whose backward has added to the gradients: its mean loss and tokens. */
  void accumulate(double meanLoss, long tokens) {
    micro++;
    lossSum += meanLoss;
    stepTokens += tokens;
  }

  /** Whether the micro-steps of the current optimizer step are all in (gradient accumulation). */
  boolean stepComplete() {
    return micro % spec.train().gradAccum() == 0;
  }

  /**
   * One optimizer step over the accumulated gradients: average over the micro-steps, the method's
   * pre-step hook, clip, AdamW at {@code lr}, the method's post-step hook, zero grads, step + 1.
   *
   * @return the global gradient norm before clipping; when it is not finite nothing was updated and
   *     the caller fails the run
   */
  double update(double lr) {
    TrainConfig t = spec.train();
    List<INDArray> grads = new ArrayList<>();
    for (LoraWeights.Trainable p : weights.trainables()) {
      if (t.gradAccum() > 1) {
        p.grad().muli(1.0 / t.gradAccum());
      }
      grads.add(p.grad());
    }
    LoraVariant variant = weights.variant();
    variant.beforeOptimizerStep(weights, step, t.steps());
    double norm = GradClip.clipByGlobalNorm(grads, t.maxGradNorm());
    if (!Double.isFinite(norm)) {
      return norm;
    }
    optimizer.step(lr);
    variant.afterOptimizerStep(weights, step, t.steps());
    weights.zeroGrad();
    step++;
    return norm;
  }

  /** Records the step's metrics and starts the next step's sums. */
  void record(StepMetrics m) {
    metrics.add(m);
    lossSum = 0;
    stepTokens = 0;
  }

  /** Stops this run at the coming step with {@code reason}, dropping its partial gradients. */
  void fail(String reason) {
    failure = "step " + (step + 1) + ": " + reason;
    weights.zeroGrad();
    lossSum = 0;
    stepTokens = 0;
  }

  /** Where the run is, for a checkpoint. */
  AdapterCheckpoint.Progress progress() {
    return new AdapterCheckpoint.Progress(
        step,
        micro,
        data.epoch(),
        data.cursor(),
        optimizer.stepCount(),
        evalLoss,
        failure,
        metrics);
  }

  /** Continues from a checkpoint's progress (its weights and moments are already restored). */
  void restore(AdapterCheckpoint.Progress p) {
    step = p.step();
    micro = p.micro();
    data.seek(p.dataEpoch(), p.dataCursor());
    evalLoss = p.evalLoss();
    failure = p.failure();
    metrics.clear();
    metrics.addAll(p.metrics());
    weights.variant().restored(weights, step, spec.train().steps());
  }

  /** The trained adapter, with {@code baseEvalLoss} the eval loss of its base without it. */
  TrainedAdapter result(double baseEvalLoss) {
    return new TrainedAdapter(
        spec,
        weights,
        AdapterOutcome.trained(
            spec, failure, step, evalLoss, baseEvalLoss, weights.parameterCount(), metrics));
  }
}
