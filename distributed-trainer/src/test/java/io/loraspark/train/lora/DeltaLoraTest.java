package io.loraspark.train.lora;

import static io.loraspark.train.model.TestModels.rows;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import io.loraspark.train.loop.AdapterSpec;
import io.loraspark.train.loop.Evaluator;
import io.loraspark.train.loop.FusedTrainer;
import io.loraspark.train.loop.TrainConfig;
import io.loraspark.train.loop.TrainedAdapter;
import io.loraspark.train.loop.TrainingFixture;
import io.loraspark.train.model.Adapters;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Projection;
import io.loraspark.train.model.TestModels;
import io.loraspark.train.model.TokenRow;
import io.loraspark.train.model.Transformer;
import io.loraspark.train.optim.LrSchedule;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Delta-LoRA (arXiv:2309.02411) in its low-rank form against its equations: the branch {@code (1 +
 * λ)·s·B·A − λ·s·B_K·A_K} against scalar loops (and an earlier version's dense {@code ΔW + s·B·A}),
 * its gradients against central differences in a fused step beside plain LoRA, 100 steps of
 * training against the dense form it replaced, the snapshot against a run stopped at K, fused
 * training equal to training alone, resume bit-identical, and the rank-2r PEFT export scoring as
 * the trained adapter.
 */
class DeltaLoraTest {
  /** An untied Llama with q, k, v biases; rows of length 5-14. */
  @RegisterExtension
  static final TrainingFixture data =
      new TrainingFixture(true, 9, rows(30, 21, 10), rows(6, 22, 10));

  static AdapterSpec spec(String id, LoraMethod method, int rank, int steps) {
    return new AdapterSpec(
        id,
        new LoraConfig(rank, 2.0 * rank, 0.0, List.of(Projection.values()), false, method),
        TrainingFixture.cosine(steps, 2, 4.0, id.hashCode()));
  }

  /** {@code s} with Delta-LoRA's λ and K. */
  static AdapterSpec withDelta(AdapterSpec s, double lambda, int k) {
    return new AdapterSpec(
        s.id(), s.lora().withDeltaLora(new DeltaLoraParams(lambda, k, false)), s.train());
  }

  /**
   * A Delta-LoRA adapter with random B and a random snapshot switched on with c = −λ, so every term
   * of the branch is nonzero.
   */
  static LoraWeights moved(ModelWeights base, LoraConfig c, long seed) {
    return LoraTestModels.moved(base, c, seed, DeltaLoraTest::moveSnapshot);
  }

  private static void moveSnapshot(LoraWeights.Module m, Random rnd) {
    m.b().assign(Nd4j.randn(rnd.nextLong(), m.b().shape()).muli(0.3));
    m.state(DeltaState.class)
        .snapshot()
        .a()
        .assign(Nd4j.randn(rnd.nextLong(), m.a().shape()).muli(0.3));
    m.state(DeltaState.class)
        .snapshot()
        .b()
        .assign(Nd4j.randn(rnd.nextLong(), m.b().shape()).muli(0.3));
    m.state(DeltaState.class).snapshot().switchOn(-DeltaLoraParams.PAPER_UPDATE_RATIO);
  }

  /** The dense weight, in scalar loops: W + Σ_k c_k·s·B_k·A_k over the given factor pairs. */
  private static double[][] dense(double[][] w, double s, double[] c, INDArray... factors) {
    double[][] out = new double[w.length][w[0].length];
    for (int o = 0; o < w.length; o++) {
      out[o] = w[o].clone();
    }
    for (int k = 0; k < c.length; k++) {
      double[][] a = factors[2 * k].toDoubleMatrix();
      double[][] b = factors[2 * k + 1].toDoubleMatrix();
      for (int o = 0; o < w.length; o++) {
        for (int i = 0; i < w[0].length; i++) {
          for (int r = 0; r < a.length; r++) {
            out[o][i] += c[k] * s * b[o][r] * a[r][i];
          }
        }
      }
    }
    return out;
  }

  @Test
  void forwardEqualsWeightPlusRatioTimesProductChangeSinceK() {
    ModelWeights base = CheckpointLoader.load(data.modelDir(), DataType.DOUBLE);
    LoraConfig cfg =
        new LoraConfig(3, 5.0, 0.0, List.of(Projection.values()), false, LoraMethod.DELTA_LORA);
    LoraWeights w = moved(base, cfg, 4);
    FusedLora fused = FusedLora.inference(w);
    Random rnd = new Random(8);
    double lambda = DeltaLoraParams.PAPER_UPDATE_RATIO;
    for (LoraWeights.Module m : w.modules()) {
      double[][] wd =
          LoraWeights.frozenWeight(base, m.layer(), m.proj(), DataType.DOUBLE).toDoubleMatrix();
      // W_t = W_0 + λ s (B A − B_K A_K), plus the trained branch s B A
      double[][] want =
          dense(
              wd,
              cfg.scaling(),
              new double[] {1 + lambda, -lambda},
              m.a(),
              m.b(),
              m.state(DeltaState.class).snapshot().a(),
              m.state(DeltaState.class).snapshot().b());
      DenseReference.assertForwardEqualsDense(
          fused, m, DenseReference.gaussian(rnd, 4, wd[0].length), wd, want);
      m.state(DeltaState.class).snapshot().switchOn(0); // before K: plain LoRA
      DenseReference.assertForwardEqualsDense(
          fused,
          m,
          DenseReference.gaussian(rnd, 4, wd[0].length),
          wd,
          dense(wd, cfg.scaling(), new double[] {1}, m.a(), m.b()));
    }
  }

  /** An earlier version's adapter (dense ΔW) still computes W + ΔW + s·B·A. */
  @Test
  void anEarlierDenseAdapterStillComputesWeightPlusDeltaPlusProduct() {
    ModelWeights base = CheckpointLoader.load(data.modelDir(), DataType.DOUBLE);
    LoraConfig cfg =
        new LoraConfig(3, 5.0, 0.0, List.of(Projection.values()), false, LoraMethod.DELTA_LORA)
            .withDeltaLora(DeltaLoraParams.DENSE);
    LoraWeights w = dense(base, cfg, 4);
    FusedLora fused = FusedLora.inference(w);
    Random rnd = new Random(8);
    for (LoraWeights.Module m : w.modules()) {
      assertThat(m.state()).isInstanceOf(DenseDeltaState.class);
      double[][] wd =
          LoraWeights.frozenWeight(base, m.layer(), m.proj(), DataType.DOUBLE).toDoubleMatrix();
      double[][] withDelta = m.state(DenseDeltaState.class).delta().toDoubleMatrix();
      for (int o = 0; o < wd.length; o++) {
        for (int i = 0; i < wd[0].length; i++) {
          withDelta[o][i] += wd[o][i];
        }
      }
      DenseReference.assertForwardEqualsDense(
          fused,
          m,
          DenseReference.gaussian(rnd, 4, wd[0].length),
          wd,
          dense(withDelta, cfg.scaling(), new double[] {1}, m.a(), m.b()));
    }
  }

  /** An earlier version's Delta-LoRA adapter: random B and ΔW. */
  static LoraWeights dense(ModelWeights base, LoraConfig c, long seed) {
    return LoraTestModels.moved(
        base,
        c,
        seed,
        (m, rnd) -> {
          m.b().assign(Nd4j.randn(rnd.nextLong(), m.b().shape()).muli(0.3));
          m.state(DenseDeltaState.class)
              .delta()
              .assign(
                  Nd4j.randn(rnd.nextLong(), m.state(DenseDeltaState.class).delta().shape())
                      .muli(0.1));
        });
  }

  /**
   * One fused step of plain LoRA (with dropout) and two Delta-LoRA adapters with their snapshots
   * on: every layer-0 A and B entry against central differences (its gradient flows back through
   * layer 1's {@code (1 + λ)·s·Aᵀ Bᵀ dy − λ·s·A_Kᵀ B_Kᵀ dy}). The λ part of the branch is detached
   * by design, so the analytic gradient is s·(…) while the loss moves with (1 + λ)·s·(…): the check
   * adds the omitted λ·grad.
   */
  @Test
  void gradientsMatchFiniteDifferencesBesidePlainLora() {
    ModelWeights base = CheckpointLoader.load(data.modelDir(), DataType.DOUBLE);
    List<Projection> all = Arrays.asList(Projection.values());
    Random rnd = new Random(13);
    LoraWeights plain = FusedStep.plainLora(base, all, 1, rnd);
    List<LoraWeights> adapters =
        List.of(
            plain,
            moved(base, new LoraConfig(2, 3, 0, all, false, LoraMethod.DELTA_LORA), 2),
            moved(base, new LoraConfig(1, 2, 0, all, true, LoraMethod.DELTA_LORA), 3));
    FusedStep step = FusedStep.run(base, adapters, rnd, 6, -1, 700, 5);
    FusedStep.Correction detachedLambda =
        (w, m) ->
            m.state() instanceof DeltaState d
                ? (p, i) -> -d.snapshot().weight() * p.grad().getDouble(i)
                : (p, i) -> 0;
    int checked = step.checkLayerZero(rnd, 1e-6, detachedLambda);
    assertThat(checked).as("entries checked").isEqualTo(3 * 7 * 2);
  }

  /**
   * The low-rank form against the dense form it replaced ({@link DenseDeltaLora}): 100 steps with λ
   * = 2, K = 20 on the same 8 rows every step, in double, every step's training loss within 1e-5
   * (they differ by rounding, which the training dynamics slowly amplify). Before K + 1 the loss is
   * plain LoRA's; by the end W has moved by more than 1e-2 somewhere, so the comparison is not
   * blind to it.
   */
  @Test
  void lowRankFormTrainsAsTheDenseFormItReplaced() {
    Transformer m = data.model(DataType.DOUBLE);
    int steps = 100;
    List<TokenRow> rows = data.train().subList(0, 8);
    AdapterSpec spec =
        withDelta(
            new AdapterSpec(
                "delta",
                spec("delta", LoraMethod.DELTA_LORA, 2, steps).lora(),
                new TrainConfig(
                    steps, rows.size(), 1, 3e-3, 4.0, 0.01, 5, LrSchedule.Kind.COSINE, 1.0, 0, 11)),
            2.0,
            20);
    List<Double> lowRank = new ArrayList<>();
    new FusedTrainer(m, List.of(spec), rows, List.of(), 0).run(x -> lowRank.add(x.trainLoss()));
    DenseDeltaLora.Run dense = DenseDeltaLora.train(m, spec, rows);
    assertThat(lowRank).hasSize(steps);
    double worst = 0;
    for (int t = 0; t < steps; t++) {
      worst = Math.max(worst, Math.abs(lowRank.get(t) - dense.losses()[t]));
      assertThat(lowRank.get(t))
          .as("step %d training loss", t)
          .isCloseTo(dense.losses()[t], within(1e-5));
    }
    System.out.printf(
        "Delta-LoRA low-rank vs dense over %d steps: worst loss difference %.3e, max |ΔW| %.4f%n",
        steps, worst, dense.maxDelta());
    assertThat(dense.maxDelta()).as("W moved").isGreaterThan(1e-2);
    assertThat(lowRank.get(steps - 1)).as("trained").isLessThan(lowRank.get(0) - 0.1);
  }

  /**
   * After 10 steps with K = 3 the snapshot is bit for bit the A and B of the same run stopped at
   * step 3 (the factors before the update of step K), and on with c = −λ; stopped at 3 it is still
   * off.
   */
  @Test
  void snapshotHoldsTheFactorsOfStepK() {
    Transformer m = data.model(DataType.DOUBLE);
    AdapterSpec spec = withDelta(spec("delta", LoraMethod.DELTA_LORA, 2, 10), 2.0, 3);
    LoraWeights atK = data.trainer(m, List.of(spec)).stopAt(3).run(x -> {}).get(0).weights();
    LoraWeights last = data.trainer(m, List.of(spec)).run(x -> {}).get(0).weights();
    for (LoraWeights.Module mod : last.modules()) {
      LoraWeights.Module k = atK.module(mod.layer(), mod.proj());
      assertThat(k.state(DeltaState.class).snapshot().on())
          .as("%s off through step K", mod.name())
          .isFalse();
      assertThat(mod.state(DeltaState.class).snapshot().weight())
          .as("%s c = −λ", mod.name())
          .isEqualTo(-2.0);
      assertThat(mod.state(DeltaState.class).snapshot().a().data().asDouble())
          .containsExactly(k.a().data().asDouble());
      assertThat(mod.state(DeltaState.class).snapshot().b().data().asDouble())
          .containsExactly(k.b().data().asDouble());
      assertThat(mod.b().sub(k.b()).amaxNumber().doubleValue()).as("B moved after K").isPositive();
    }
  }

  static List<AdapterSpec> mix(int steps) {
    return List.of(
        spec("lora", LoraMethod.LORA, 2, steps),
        withDelta(spec("delta", LoraMethod.DELTA_LORA, 2, steps), 2.0, 3),
        withDelta(spec("delta4", LoraMethod.DELTA_LORA, 4, steps), 0.5, 4));
  }

  /** In double: 1e-9 is far above rounding and far below any leak between adapters. */
  @Test
  void fusedWithPlainLoraEqualsEachAlone() {
    Transformer m = data.model(DataType.DOUBLE);
    data.fusedThenEachAlone(
        m,
        mix(6),
        (s, fused, alone) -> {
          LoraFamilyTrainingTest.assertMatchesAlone(s, fused, alone);
          for (LoraWeights.Module mod : fused.weights().modules()) {
            if (mod.state() instanceof DeltaState) {
              INDArray other =
                  alone
                      .weights()
                      .module(mod.layer(), mod.proj())
                      .state(DeltaState.class)
                      .snapshot()
                      .b();
              double scale = other.amaxNumber().doubleValue();
              assertThat(scale).as("%s B_K moved", mod.name()).isGreaterThan(1e-5);
              assertThat(
                      mod.state(DeltaState.class)
                              .snapshot()
                              .b()
                              .sub(other)
                              .amaxNumber()
                              .doubleValue()
                          / scale)
                  .as("%s %s B_K", s.id(), mod.name())
                  .isLessThan(1e-9);
            }
          }
        });
  }

  /**
   * Killed at step 5 with checkpoints every 2 steps: resumed from step 4, after K = 3 for one
   * adapter (snapshot restored and switched back on) and at K = 4 for the other (snapshot taken by
   * the resumed run), both end bit-identical to the uninterrupted run.
   */
  @Test
  void resumeIsBitIdenticalIncludingTheSnapshot(@TempDir Path dir) {
    List<AdapterSpec> specs = mix(6);
    TrainingFixture.Resumed run =
        data.wholeAndResumed(
            data.model(DataType.FLOAT), specs, dir.resolve("ckpt"), 2, 1, 5, specs.size());
    List<TrainedAdapter> whole = run.whole();
    List<TrainedAdapter> resumed = run.resumed();
    for (int k = 0; k < specs.size(); k++) {
      LoraFamilyTrainingTest.assertSameTrainableBits(
          specs.get(k).id(), whole.get(k).weights(), resumed.get(k).weights());
      for (LoraWeights.Module mod : whole.get(k).weights().modules()) {
        if (mod.state() instanceof DeltaState) {
          FrozenBranch back =
              resumed
                  .get(k)
                  .weights()
                  .module(mod.layer(), mod.proj())
                  .state(DeltaState.class)
                  .snapshot();
          assertThat(back.weight())
              .isEqualTo(mod.state(DeltaState.class).snapshot().weight())
              .isNotZero();
          assertThat(back.a().data().asFloat())
              .as("%s %s A_K", specs.get(k).id(), mod.name())
              .containsExactly(mod.state(DeltaState.class).snapshot().a().data().asFloat());
          assertThat(back.b().data().asFloat())
              .as("%s %s B_K", specs.get(k).id(), mod.name())
              .containsExactly(mod.state(DeltaState.class).snapshot().b().data().asFloat());
        }
      }
    }
  }

  /**
   * On stories260K: trained Delta-LoRA adapters (plain and rsLoRA scaling, K = 1 of 4 steps) are
   * saved as ordinary rank-2r PEFT LoRA (peft_type LORA, r = 8, lora_alpha 2α or α·√2, method, λ
   * and K beside it), load back as plain LoRA, and score on held-out rows as the trained adapter
   * does in the engine within 1e-4 nats/token; so does the merged checkpoint.
   */
  @Test
  void rankTwoRExportScoresAsTheTrainedAdapter(@TempDir Path dir) throws Exception {
    Path stories = TestModels.STORIES;
    Transformer m = new Transformer(CheckpointLoader.load(stories));
    List<TokenRow> rows = new ArrayList<>();
    Random rnd = new Random(3);
    for (int i = 0; i < 12; i++) {
      int[] ids = new int[24];
      for (int t = 0; t < ids.length; t++) {
        ids[t] = 1 + rnd.nextInt(m.config().vocabSize() - 1);
      }
      rows.add(new TokenRow(ids, ids.clone()));
    }
    TrainConfig train =
        new TrainConfig(4, 4, 1, 1e-2, 1.0, 0, 0, LrSchedule.Kind.CONSTANT, 1.0, 0, 5);
    List<AdapterSpec> specs = new ArrayList<>();
    for (boolean rs : new boolean[] {false, true}) {
      LoraConfig c =
          new LoraConfig(4, 8, 0, List.of(Projection.values()), rs, LoraMethod.DELTA_LORA)
              .withDeltaLora(new DeltaLoraParams(2, 1, false));
      specs.add(new AdapterSpec(rs ? "rs" : "delta", c, train));
    }
    List<TrainedAdapter> trained =
        new FusedTrainer(m, specs, rows.subList(0, 8), List.of(), 0).run(x -> {});
    List<TokenRow> heldOut = rows.subList(8, 12);
    double baseLoss = Evaluator.score(m, Adapters.NONE, heldOut, 8, 0).mean(0);
    for (TrainedAdapter t : trained) {
      LoraWeights w = t.weights();
      Path adapter = dir.resolve(t.spec().id());
      PeftAdapter.save(adapter, w, stories.toString());
      String config = Files.readString(adapter.resolve(PeftAdapter.CONFIG_FILE));
      assertThat(config).contains("\"peft_type\": \"LORA\"").contains("\"r\": 8");
      assertThat(config)
          .contains(
              w.config().rsLora() ? "\"lora_alpha\": " + 8 * Math.sqrt(2) : "\"lora_alpha\": 16");
      assertThat(adapter.resolve(PeftAdapter.DELTA_README)).doesNotExist();
      com.fasterxml.jackson.databind.JsonNode provenance =
          new com.fasterxml.jackson.databind.ObjectMapper()
              .readTree(adapter.resolve(PeftAdapter.PROVENANCE_FILE).toFile());
      assertThat(provenance.get("method").asText()).isEqualTo("delta-lora");
      assertThat(provenance.get("update_ratio").asDouble()).isEqualTo(2.0);
      assertThat(provenance.get("start_step").asInt()).isEqualTo(1);
      assertThat(provenance.get("rank").asInt()).isEqualTo(4);
      LoraWeights back = PeftAdapter.load(adapter, m.weights(), DataType.FLOAT);
      assertThat(back.config().method()).isEqualTo(LoraMethod.LORA);
      assertThat(back.config().rank()).isEqualTo(8);
      double engine = Evaluator.score(m, FusedLora.inference(w), heldOut, 8, 0).mean(0);
      double exported = Evaluator.score(m, FusedLora.inference(back), heldOut, 8, 0).mean(0);
      Path merged = dir.resolve(t.spec().id() + "-merged");
      LoraMerge.writeCheckpoint(LoraMerge.merged(m.weights(), w), stories, merged);
      Transformer mm = new Transformer(CheckpointLoader.load(merged));
      double mergedLoss = Evaluator.score(mm, Adapters.NONE, heldOut, 8, 0).mean(0);
      System.out.printf(
          "stories260K held-out loss (%s): base %.6f, trained %.6f, rank-2r export %.6f, merged"
              + " %.6f%n",
          t.spec().id(), baseLoss, engine, exported, mergedLoss);
      assertThat(Math.abs(engine - baseLoss))
          .as("the adapter changed the loss")
          .isGreaterThan(1e-3);
      assertThat(exported).as("%s rank-2r export", t.spec().id()).isCloseTo(engine, within(1e-4));
      assertThat(mergedLoss).as("%s merged", t.spec().id()).isCloseTo(engine, within(1e-4));
    }
  }

  /**
   * An earlier version's adapter (peft_type DELTA_LORA with delta_weight, a README) is written and
   * read back as it was, A, B and ΔW bit for bit.
   */
  @Test
  void anEarlierDenseAdapterRoundTrips(@TempDir Path dir) throws Exception {
    ModelWeights base = CheckpointLoader.load(data.modelDir(), DataType.FLOAT);
    LoraConfig cfg =
        new LoraConfig(2, 4, 0, List.of(Projection.values()), false, LoraMethod.DELTA_LORA)
            .withDeltaLora(DeltaLoraParams.DENSE);
    LoraWeights w = dense(base, cfg, 6);
    PeftAdapter.save(dir, w, null);
    String config = Files.readString(dir.resolve(PeftAdapter.CONFIG_FILE));
    assertThat(config).contains("\"peft_type\": \"DELTA_LORA\"").doesNotContain("delta_update");
    assertThat(Files.readString(dir.resolve(PeftAdapter.DELTA_README)))
        .contains("not a PEFT adapter");
    LoraWeights back = PeftAdapter.load(dir, base.config(), DataType.FLOAT);
    assertThat(back.config()).isEqualTo(cfg);
    for (LoraWeights.Module mod : w.modules()) {
      LoraWeights.Module b = back.module(mod.layer(), mod.proj());
      assertThat(b.state(DenseDeltaState.class).delta().data().asFloat())
          .containsExactly(mod.state(DenseDeltaState.class).delta().data().asFloat());
      assertThat(b.a().data().asFloat()).containsExactly(mod.a().data().asFloat());
      assertThat(b.b().data().asFloat()).containsExactly(mod.b().data().asFloat());
    }
  }

  /**
   * Every other method's checkpoint state is its PEFT export, byte for byte (config and weights),
   * so their checkpoints are what they were before Delta-LoRA had a state of its own.
   */
  @Test
  void otherMethodsCheckpointTheirExportBytes(@TempDir Path dir) throws Exception {
    ModelWeights base = CheckpointLoader.load(data.modelDir(), DataType.FLOAT);
    for (LoraMethod method : LoraMethod.values()) {
      if (method == LoraMethod.DELTA_LORA) {
        continue;
      }
      LoraConfig c = new LoraConfig(2, 4, 0, List.of(Projection.values()), false, method);
      LoraWeights w = LoraWeights.init(base, c, 3, DataType.FLOAT);
      Path export = dir.resolve(method.key() + "-export");
      Path state = dir.resolve(method.key() + "-state");
      PeftAdapter.save(export, w, null);
      PeftAdapter.saveState(state, w);
      for (String f : List.of(PeftAdapter.CONFIG_FILE, PeftAdapter.WEIGHTS_FILE)) {
        assertThat(Files.readAllBytes(state.resolve(f)))
            .as("%s %s", method.key(), f)
            .isEqualTo(Files.readAllBytes(export.resolve(f)));
      }
      try (var files = Files.list(state)) {
        assertThat(files.count()).as("%s state files", method.key()).isEqualTo(2);
      }
    }
  }

  @Test
  void dropoutIsRefusedWithOneLine() {
    assertThatThrownBy(
            () -> new LoraConfig(2, 4, 0.1, List.of(Projection.Q), false, LoraMethod.DELTA_LORA))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessage(
            "dropout must be 0 for method delta-lora (the paper removes dropout from its branch)"
                + " but was 0.1");
  }
}
