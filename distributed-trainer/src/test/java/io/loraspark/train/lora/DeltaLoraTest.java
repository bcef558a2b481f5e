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
 * Delta-LoRA (arXiv:2309.02411) against its equations: the branch {@code ΔW x + s·B·A·x} against
 * scalar loops, its gradients against central differences in a fused step beside plain LoRA, the W
 * update against a plain-Java replay of λ·Σ(sB_{t+1}A_{t+1} − sB_tA_t), fused training equal to
 * training alone, resume bit-identical with ΔW, and the merged checkpoint scoring as the adapter.
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

  /** A Delta-LoRA adapter with random B and ΔW, so every term of the branch is nonzero. */
  static LoraWeights moved(ModelWeights base, LoraConfig c, long seed) {
    return LoraTestModels.moved(base, c, seed, DeltaLoraTest::moveDelta);
  }

  private static void moveDelta(LoraWeights.Module m, Random rnd) {
    m.b().assign(Nd4j.randn(rnd.nextLong(), m.b().shape()).muli(0.3));
    m.delta().assign(Nd4j.randn(rnd.nextLong(), m.delta().shape()).muli(0.1));
  }

  @Test
  void forwardEqualsDenseWeightPlusDeltaPlusProduct() {
    ModelWeights base = CheckpointLoader.load(data.modelDir(), DataType.DOUBLE);
    LoraConfig cfg =
        new LoraConfig(3, 5.0, 0.0, List.of(Projection.values()), false, LoraMethod.DELTA_LORA);
    LoraWeights w = moved(base, cfg, 4);
    FusedLora fused = FusedLora.inference(w);
    Random rnd = new Random(8);
    for (LoraWeights.Module m : w.modules()) {
      double[][] wd =
          LoraWeights.frozenWeight(base, m.layer(), m.proj(), DataType.DOUBLE).toDoubleMatrix();
      double[][] b = m.b().toDoubleMatrix();
      double[][] a = m.a().toDoubleMatrix();
      double[][] delta = m.delta().toDoubleMatrix();
      double[][] dense = new double[wd.length][wd[0].length];
      for (int o = 0; o < wd.length; o++) {
        for (int i = 0; i < wd[0].length; i++) {
          double v = wd[o][i] + delta[o][i];
          for (int r = 0; r < a.length; r++) {
            v += cfg.scaling() * b[o][r] * a[r][i];
          }
          dense[o][i] = v;
        }
      }
      DenseReference.assertForwardEqualsDense(
          fused, m, DenseReference.gaussian(rnd, 4, wd[0].length), wd, dense);
    }
  }

  /**
   * One fused step of plain LoRA (with dropout) and two Delta-LoRA adapters: every layer-0 A and B
   * entry against central differences (its gradient flows back through layer 1's {@code ΔWᵀ dy}).
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
    int checked = step.checkLayerZero(rnd, 1e-6, FusedStep.NO_CORRECTION);
    assertThat(checked).as("entries checked").isEqualTo(3 * 7 * 2);
  }

  /**
   * Runs of 10 steps (K = 1) stopped at every step j give A_j, B_j; the full run's ΔW must equal
   * λ·Σ_{t≥K} (sB_{t+1}A_{t+1} − sB_tA_t), summed in plain Java double loops, and the run stopped
   * at K must still have ΔW = 0. In double, so 1e-12 relative is rounding only.
   */
  @Test
  void deltaEqualsRatioTimesSumOfProductChangesReplayed() {
    Transformer m = data.model(DataType.DOUBLE);
    int steps = 10;
    long k = DeltaLoraVariant.startStep(steps);
    assertThat(k).isEqualTo(1);
    AdapterSpec spec = spec("delta", LoraMethod.DELTA_LORA, 2, steps);
    double s = spec.lora().scaling();
    List<LoraWeights> at = new ArrayList<>();
    for (int j = 0; j <= steps; j++) {
      at.add(
          j == 0
              ? LoraWeights.init(m.weights(), spec.lora(), spec.train().seed(), DataType.DOUBLE)
              : data.trainer(m, List.of(spec)).stopAt(j).run(x -> {}).get(0).weights());
    }
    for (int j = 0; j <= k; j++) {
      for (LoraWeights.Module mod : at.get(j).modules()) {
        assertThat(mod.delta().amaxNumber().doubleValue()).as("ΔW after %d steps", j).isZero();
      }
    }
    LoraWeights last = at.get(steps);
    for (LoraWeights.Module mod : last.modules()) {
      int out = (int) mod.b().rows();
      int in = (int) mod.a().columns();
      double[][] want = new double[out][in];
      for (int t = (int) k; t < steps; t++) {
        double[][] before = product(at.get(t).module(mod.layer(), mod.proj()));
        double[][] after = product(at.get(t + 1).module(mod.layer(), mod.proj()));
        for (int o = 0; o < out; o++) {
          for (int i = 0; i < in; i++) {
            want[o][i] += DeltaLoraVariant.UPDATE_RATIO * (s * after[o][i] - s * before[o][i]);
          }
        }
      }
      double scale = 0;
      double worst = 0;
      for (int o = 0; o < out; o++) {
        for (int i = 0; i < in; i++) {
          scale = Math.max(scale, Math.abs(want[o][i]));
          worst = Math.max(worst, Math.abs(mod.delta().getDouble(o, i) - want[o][i]));
        }
      }
      assertThat(scale).as("%s ΔW moved", mod.name()).isGreaterThan(1e-4);
      assertThat(worst / scale).as("%s ΔW vs replay", mod.name()).isLessThan(1e-12);
    }
  }

  /** B·A in scalar loops. */
  private static double[][] product(LoraWeights.Module m) {
    double[][] a = m.a().toDoubleMatrix();
    double[][] b = m.b().toDoubleMatrix();
    double[][] p = new double[b.length][a[0].length];
    for (int o = 0; o < b.length; o++) {
      for (int i = 0; i < a[0].length; i++) {
        for (int r = 0; r < a.length; r++) {
          p[o][i] += b[o][r] * a[r][i];
        }
      }
    }
    return p;
  }

  static List<AdapterSpec> mix(int steps) {
    return List.of(
        spec("lora", LoraMethod.LORA, 2, steps),
        spec("delta", LoraMethod.DELTA_LORA, 2, steps),
        spec("delta4", LoraMethod.DELTA_LORA, 4, steps));
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
            if (mod.delta() != null) {
              INDArray other = alone.weights().module(mod.layer(), mod.proj()).delta();
              double scale = other.amaxNumber().doubleValue();
              assertThat(scale).as("%s ΔW moved", mod.name()).isGreaterThan(1e-5);
              assertThat(mod.delta().sub(other).amaxNumber().doubleValue() / scale)
                  .as("%s %s ΔW", s.id(), mod.name())
                  .isLessThan(1e-9);
            }
          }
        });
  }

  @Test
  void resumeIsBitIdenticalIncludingDelta(@TempDir Path dir) {
    List<AdapterSpec> specs = mix(6);
    // killed at step 5: every adapter has its step-4 checkpoint
    TrainingFixture.Resumed run =
        data.wholeAndResumed(
            data.model(DataType.FLOAT), specs, dir.resolve("ckpt"), 2, 1, 5, specs.size());
    List<TrainedAdapter> whole = run.whole();
    List<TrainedAdapter> resumed = run.resumed();
    for (int k = 0; k < specs.size(); k++) {
      LoraFamilyTrainingTest.assertSameTrainableBits(
          specs.get(k).id(), whole.get(k).weights(), resumed.get(k).weights());
      for (LoraWeights.Module mod : whole.get(k).weights().modules()) {
        if (mod.delta() != null) {
          assertThat(
                  resumed.get(k).weights().module(mod.layer(), mod.proj()).delta().data().asFloat())
              .as("%s %s ΔW", specs.get(k).id(), mod.name())
              .containsExactly(mod.delta().data().asFloat());
        }
      }
    }
  }

  /**
   * On stories260K: a trained Delta-LoRA adapter saved (not as PEFT: peft_type DELTA_LORA, a
   * README), loaded back equal, and merged into a Hugging Face checkpoint whose loss on held-out
   * rows, without any adapter, equals the adapter's in the engine within 1e-4 nats/token.
   */
  @Test
  void savedAdapterRoundTripsAndMergedCheckpointScoresTheSame(@TempDir Path dir) throws Exception {
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
    AdapterSpec spec =
        new AdapterSpec(
            "delta",
            new LoraConfig(4, 8, 0, List.of(Projection.values()), false, LoraMethod.DELTA_LORA),
            new TrainConfig(4, 4, 1, 1e-2, 1.0, 0, 0, LrSchedule.Kind.CONSTANT, 1.0, 0, 5));
    LoraWeights w =
        new FusedTrainer(m, List.of(spec), rows.subList(0, 8), List.of(), 0)
            .run(x -> {})
            .get(0)
            .weights();
    Path adapter = dir.resolve("adapter");
    PeftAdapter.save(adapter, w, stories.toString());
    assertThat(Files.readString(adapter.resolve(PeftAdapter.CONFIG_FILE)))
        .contains("\"peft_type\": \"DELTA_LORA\"");
    assertThat(Files.readString(adapter.resolve(PeftAdapter.DELTA_README)))
        .contains("not a PEFT adapter");
    LoraWeights back = PeftAdapter.load(adapter, m.weights(), DataType.FLOAT);
    assertThat(back.config()).isEqualTo(w.config());
    for (LoraWeights.Module mod : w.modules()) {
      LoraWeights.Module b = back.module(mod.layer(), mod.proj());
      assertThat(b.delta().data().asFloat()).containsExactly(mod.delta().data().asFloat());
      assertThat(b.a().data().asFloat()).containsExactly(mod.a().data().asFloat());
      assertThat(b.b().data().asFloat()).containsExactly(mod.b().data().asFloat());
    }
    List<TokenRow> heldOut = rows.subList(8, 12);
    double engine = Evaluator.score(m, FusedLora.inference(back), heldOut, 8, 0).mean(0);
    Path merged = dir.resolve("merged");
    LoraMerge.writeCheckpoint(LoraMerge.merged(m.weights(), back), stories, merged);
    Transformer mm = new Transformer(CheckpointLoader.load(merged));
    double mergedLoss = Evaluator.score(mm, Adapters.NONE, heldOut, 8, 0).mean(0);
    double baseLoss = Evaluator.score(m, Adapters.NONE, heldOut, 8, 0).mean(0);
    System.out.printf(
        "stories260K held-out loss: base %.6f, Delta-LoRA in the engine %.6f, merged %.6f%n",
        baseLoss, engine, mergedLoss);
    assertThat(Math.abs(engine - baseLoss)).as("the adapter changed the loss").isGreaterThan(1e-3);
    assertThat(mergedLoss).isCloseTo(engine, within(1e-4));
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
