package io.loraspark.train.loop;

import io.loraspark.train.lora.FrozenChain;
import io.loraspark.train.lora.FusedLora;
import io.loraspark.train.lora.LoraWeights;
import io.loraspark.train.model.Adapters;
import io.loraspark.train.model.Batch;
import io.loraspark.train.model.LossStats;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.TokenRow;
import io.loraspark.train.model.Transformer;
import io.loraspark.train.model.Workspace;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * Trains K adapters at once on one frozen base: every micro-step concatenates each active adapter's
 * own micro-batch into one fused batch, runs the frozen model once over all rows, and gives every
 * adapter its own loss, gradients, optimizer, schedule and data order. A NaN/inf loss or gradient
 * stops that adapter only (marked failed with the step and reason); the others continue.
 *
 * <p>Use: {@code new FusedTrainer(...) → run(listener) → List<TrainedAdapter>}, once.
 */
public final class FusedTrainer {
  private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(FusedTrainer.class);
  private final Transformer model;
  private final List<TokenRow> eval;
  private final int padId;
  private final int maxLen;
  private final List<AdapterRun> runs = new ArrayList<>();
  private final Map<Long, Workspace> workspaces = new HashMap<>();
  private final FusedLora fused;
  private Path checkpointRoot;
  private int checkpointEvery;
  private boolean recompute;
  private int checkpointKeep = 1;
  private int stopAt = Integer.MAX_VALUE;

  /**
   * @param train training rows shared by all adapters (each sees its own shuffled order)
   * @param eval held-out rows for eval loss (may be empty)
   * @param padId id written at padded positions
   */
  public FusedTrainer(
      Transformer model,
      List<AdapterSpec> specs,
      List<TokenRow> train,
      List<TokenRow> eval,
      int padId) {
    this(model, specs, eval, padId, java.util.Collections.nCopies(specs.size(), train));
  }

  /**
   * Adapters with their own training rows (data-parallel replicas train on disjoint subsets).
   *
   * @param trainPerAdapter training rows of each adapter, in spec order
   */
  public static FusedTrainer withOwnRows(
      Transformer model,
      List<AdapterSpec> specs,
      List<List<TokenRow>> trainPerAdapter,
      List<TokenRow> eval,
      int padId) {
    return new FusedTrainer(model, specs, eval, padId, trainPerAdapter);
  }

  private FusedTrainer(
      Transformer model,
      List<AdapterSpec> specs,
      List<TokenRow> eval,
      int padId,
      List<List<TokenRow>> trainPerAdapter) {
    ModelConfig.require(!specs.isEmpty(), "at least one adapter is required");
    ModelConfig.require(
        trainPerAdapter.size() == specs.size(),
        "%d training sets for %d adapters",
        trainPerAdapter.size(),
        specs.size());
    this.model = model;
    this.fused = new FusedLora(model.adapterGemm());
    this.eval = List.copyOf(eval);
    this.padId = padId;
    this.maxLen =
        trainPerAdapter.stream().flatMap(List::stream).mapToInt(TokenRow::length).max().orElse(1);
    Map<List<TokenRow>, String> prints = new java.util.IdentityHashMap<>();
    Map<String, FrozenChain> chains = new HashMap<>(); // children of one parent share its chain
    DataType dt = model.weights().embed().dataType();
    for (int i = 0; i < specs.size(); i++) {
      AdapterSpec spec = specs.get(i);
      List<TokenRow> train = trainPerAdapter.get(i);
      LoraWeights w = LoraWeights.init(model.weights(), spec.lora(), spec.train().seed(), dt);
      FrozenChain chain =
          spec.parent() == null
              ? null
              : chains.computeIfAbsent(
                  spec.parent().contentHash(),
                  h -> FrozenChain.load(spec.parent(), model.weights(), dt));
      String print = prints.computeIfAbsent(train, t -> AdapterKey.dataFingerprint(t, this.eval));
      runs.add(new AdapterRun(spec, w, chain, train, print));
    }
  }

  /**
   * Writes a checkpoint of each adapter every {@code every} optimizer steps and when it stops
   * (finished, stopped by {@link #stopAt} or failed), keeping the newest {@code keep} per adapter
   * under {@code root/<adapter-id>/}.
   *
   * @param every steps between checkpoints, 0 for only when the adapter stops
   */
  public FusedTrainer checkpointing(Path root, int every, int keep) {
    ModelConfig.require(every >= 0, "checkpoint interval must be >= 0 but was %d", every);
    ModelConfig.require(keep >= 1, "checkpoints to keep must be >= 1 but was %d", keep);
    this.checkpointRoot = root;
    this.checkpointEvery = every;
    this.checkpointKeep = keep;
    return this;
  }

  /**
   * Recomputes each layer's activations during backward instead of keeping every layer's (see
   * {@link Workspace}): the same gradients bit for bit, one layer's activations in memory instead
   * of L, about one more forward pass of compute. For long sequences that do not fit otherwise.
   */
  public FusedTrainer recomputingActivations(boolean recompute) {
    this.recompute = recompute;
    return this;
  }

  /**
   * Stops every adapter at optimizer step {@code step} (a rung of successive halving) even if its
   * schedule runs longer; the schedule still spans the adapter's full step count, so a later run
   * resumed from the checkpoint continues the same curve.
   */
  public FusedTrainer stopAt(int step) {
    ModelConfig.require(step > 0, "stop step must be > 0 but was %d", step);
    this.stopAt = step;
    return this;
  }

  /**
   * Restores every adapter that has an intact checkpoint under the checkpoint root (see {@link
   * #checkpointing}): weights, AdamW moments, step, data position and metrics so far, so training
   * continues exactly as if it had not stopped.
   *
   * @return how many adapters were restored
   * @throws IllegalArgumentException when a checkpoint belongs to another configuration or data
   */
  public int resume() {
    return resume(note -> LOG.warn("{}", note));
  }

  /**
   * {@link #resume()}, reporting each checkpoint of another key format ({@link AdapterKey}) to
   * {@code notes} in one line: resumed when its format-1 key still matches, else discarded and the
   * adapter retrained from step 0.
   */
  public int resume(Consumer<String> notes) {
    ModelConfig.require(checkpointRoot != null, "resume needs a checkpoint directory");
    int restored = 0;
    for (AdapterRun s : runs) {
      var loaded =
          AdapterCheckpoint.restore(
              checkpointRoot,
              s.spec.id(),
              key(s),
              AdapterKey.legacyHash(s.spec, model.config(), s.dataFingerprint),
              s.weights,
              s.optimizer,
              notes);
      if (loaded.isPresent()) {
        s.restore(loaded.get().progress());
        restored++;
      }
    }
    return restored;
  }

  /** Trains every adapter to its step count (or failure) and returns them in spec order. */
  public List<TrainedAdapter> run(Consumer<StepMetrics> listener) {
    KernelWarmup.once();
    Map<FrozenChain, Double> baseEval = new java.util.IdentityHashMap<>(); // null: the bare base
    for (AdapterRun s : runs) {
      baseEval.computeIfAbsent(s.chain, c -> evalLoss(c == null ? Adapters.NONE : c.alone()));
    }
    while (runs.stream().anyMatch(this::active)) {
      microStep(listener);
    }
    return runs.stream().map(s -> s.result(baseEval.get(s.chain))).toList();
  }

  /** One fused forward/backward over every active adapter's next micro-batch. */
  private void microStep(Consumer<StepMetrics> listener) {
    List<AdapterRun> active = runs.stream().filter(this::active).toList();
    List<TokenRow> batchRows = new ArrayList<>();
    List<Integer> groups = new ArrayList<>();
    for (int k = 0; k < active.size(); k++) {
      for (TokenRow row : active.get(k).data.next(active.get(k).spec.train().batchSize())) {
        batchRows.add(row);
        groups.add(k);
      }
    }
    int[] rowGroups = groups.stream().mapToInt(Integer::intValue).toArray();
    Batch batch = Batch.of(batchRows, padId, rowGroups, active.size(), maxLen);
    List<FusedLora.Slot> slots = new ArrayList<>();
    int row = 0;
    for (AdapterRun s : active) {
      int rows = s.spec.train().batchSize();
      long seed = s.spec.train().seed() * 0x9E3779B97F4A7C15L + s.micro;
      slots.add(
          new FusedLora.Slot(
              s.weights, row * batch.seqLen(), (row + rows) * batch.seqLen(), seed, s.chain));
      row += rows;
    }
    long start = System.nanoTime();
    Workspace ws = workspace(batch.rows(), batch.seqLen());
    fused.bind(slots, true, 0);
    model.forward(batch, fused, ws);
    LossStats stats = model.loss(batch, ws);
    model.backward(batch, fused, ws, stats);
    double seconds = (System.nanoTime() - start) / 1e9;
    long inputTokens = java.util.Arrays.stream(batch.segments()).filter(v -> v != 0).count();
    for (int k = 0; k < active.size(); k++) {
      AdapterRun s = active.get(k);
      s.accumulate(stats.counts()[k] == 0 ? 0 : stats.mean(k), stats.counts()[k]);
      if (!Double.isFinite(stats.nllSums()[k])) {
        fail(s, "non-finite loss " + stats.nllSums()[k]);
      } else if (s.stepComplete()) {
        optimizerStep(s, inputTokens / seconds, listener);
      }
    }
  }

  /** One optimizer step of {@code s} ({@link AdapterRun#update}); then eval and metrics. */
  private void optimizerStep(AdapterRun s, double tokensPerSecond, Consumer<StepMetrics> listener) {
    TrainConfig t = s.spec.train();
    double lr = s.lr();
    double norm = s.update(lr);
    if (!Double.isFinite(norm)) {
      fail(s, "non-finite gradient norm " + norm);
      return;
    }
    double evalLoss = Double.NaN;
    boolean last = s.step == s.target(stopAt);
    if (last || (t.evalEvery() > 0 && s.step % t.evalEvery() == 0)) {
      evalLoss = evalLoss(FusedLora.inference(s.weights, s.chain));
      s.evalLoss = evalLoss;
    }
    StepMetrics m =
        new StepMetrics(
            s.spec.id(),
            s.step,
            s.lossSum / t.gradAccum(),
            evalLoss,
            lr,
            norm,
            s.stepTokens,
            tokensPerSecond);
    s.record(m);
    if (checkpointRoot != null
        && (last || (checkpointEvery > 0 && s.step % checkpointEvery == 0))) {
      checkpoint(s);
    }
    listener.accept(m);
  }

  private void fail(AdapterRun s, String reason) {
    s.fail(reason);
    if (checkpointRoot != null) {
      checkpoint(s);
    }
  }

  private void checkpoint(AdapterRun s) {
    AdapterCheckpoint.write(
        checkpointRoot, s.spec.id(), key(s), s.progress(), s.weights, s.optimizer, checkpointKeep);
  }

  private boolean active(AdapterRun s) {
    return s.active(stopAt);
  }

  /** What a checkpoint is valid for: the adapter's settings, the model shape and the data. */
  private AdapterKey key(AdapterRun s) {
    return AdapterKey.of(s.spec, model.config(), s.dataFingerprint);
  }

  private double evalLoss(Adapters adapters) {
    if (eval.isEmpty()) {
      return Double.NaN;
    }
    LossStats st = Evaluator.score(model, adapters, eval, Evaluator.DEFAULT_BATCH_SIZE, padId);
    return st.totalCount() == 0 ? Double.NaN : st.totalNll() / st.totalCount();
  }

  private Workspace workspace(int rows, int seqLen) {
    return workspaces.computeIfAbsent(
        ((long) rows << 32) | seqLen, key -> model.newWorkspace(rows, seqLen, recompute));
  }
}
