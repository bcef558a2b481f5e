package io.loraspark.train.lora;

import static io.loraspark.train.lora.LoraFamilyTrainingTest.assertSameTrainableBits;
import static io.loraspark.train.lora.LoraFamilyTrainingTest.fusedEqualEachAlone;
import static io.loraspark.train.lora.LoraFamilyTrainingTest.spec;
import static io.loraspark.train.model.TestModels.rows;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import io.loraspark.train.loop.AdapterSpec;
import io.loraspark.train.loop.AdapterStatus;
import io.loraspark.train.loop.TrainedAdapter;
import io.loraspark.train.loop.TrainingFixture;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Projection;
import io.loraspark.train.model.Transformer;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/**
 * VeRA and AdaLoRA adapters trained beside plain LoRA in one fused step against each trained alone,
 * and AdaLoRA's {@link RankAllocator} against PEFT's budget formula and importance scores written
 * out here, on a small random Llama.
 */
class VeraAdaLoraTrainingTest {
  /** The model and rows of {@link LoraFamilyTrainingTest}. */
  @RegisterExtension
  static final TrainingFixture data =
      new TrainingFixture(true, 7, rows(30, 11, 10), rows(6, 12, 10));

  static List<AdapterSpec> mix(int steps) {
    return List.of(
        spec("lora", LoraMethod.LORA, 2, 0.1, steps),
        spec("vera", LoraMethod.VERA, 4, 0.1, steps),
        spec("adalora", LoraMethod.ADALORA, 2, 0.1, steps),
        spec("vera1", LoraMethod.VERA, 1, 0.0, steps),
        spec("adalora1", LoraMethod.ADALORA, 1, 0.0, steps));
  }

  /**
   * In double, so 1e-9 is far above rounding after four Adam steps and far below any leak of one
   * adapter's rows, shared projections or rank masks into another's. With PEFT's default schedule
   * (tinit 0, tfinal 0, deltaT 1) AdaLoRA masks after every step and its last budget is the target.
   */
  @Test
  void veraAndAdaLoraFusedWithLoraEqualEachAloneInDouble() {
    Transformer m = data.model(DataType.DOUBLE);
    int steps = 4;
    List<TrainedAdapter> fused = fusedEqualEachAlone(data, m, mix(steps));
    LoraWeights vera = fused.get(1).weights();
    LoraWeights veraInit =
        LoraWeights.init(
            m.weights(),
            mix(steps).get(1).lora(),
            mix(steps).get(1).train().seed(),
            DataType.DOUBLE);
    assertThat(vera.shared().get("vera_A").equals(veraInit.shared().get("vera_A")))
        .as("vera_A frozen")
        .isTrue();
    assertThat(vera.shared().get("vera_B").equals(veraInit.shared().get("vera_B")))
        .as("vera_B frozen")
        .isTrue();
    LoraWeights.Module v0 = vera.modules().iterator().next();
    assertThat(v0.state(VeraState.class).lambdaB().amaxNumber().doubleValue())
        .as("λ_b trained")
        .isGreaterThan(1e-4);
    assertThat(v0.state(VeraState.class).lambdaD().sub(0.1).amaxNumber().doubleValue())
        .as("λ_d trained")
        .isGreaterThan(1e-4);

    LoraWeights ada = fused.get(2).weights();
    int kept = 0;
    for (LoraWeights.Module mod : ada.modules()) {
      boolean[] k = ada.allocator().kept(mod.name());
      for (int i = 0; i < k.length; i++) {
        kept += k[i] ? 1 : 0;
        if (!k[i]) {
          assertThat(mod.state(AdaLoraState.class).e().getDouble(i, 0))
              .as("%s E[%d] masked", mod.name(), i)
              .isZero();
        }
      }
    }
    assertThat(kept).as("kept ranks = target_r · modules").isEqualTo(2 * ada.modules().size());
    assertThat(ada.allocator().totalSteps()).isEqualTo(steps);
  }

  /**
   * A checkpointed run killed at step 3 and resumed: VeRA continues bit-identically (its shared
   * projections and λ vectors are all in the PEFT save); AdaLoRA resumes from its saved rank
   * pattern and total step but, as with PEFT under a Trainer checkpoint, restarts its importance
   * EMAs, so it is only required to finish at the target budget.
   */
  @Test
  void resumedRunContinuesVeraBitIdenticallyAndAdaLoraAtItsBudget(@TempDir Path dir) {
    List<AdapterSpec> specs =
        List.of(
            spec("vera", LoraMethod.VERA, 4, 0.1, 6),
            spec("adalora", LoraMethod.ADALORA, 2, 0.1, 6));
    TrainingFixture.Resumed run =
        data.wholeAndResumed(data.model(DataType.FLOAT), specs, dir.resolve("ckpt"), 2, 1, 3, 2);
    List<TrainedAdapter> resumed = run.resumed();
    assertSameTrainableBits("vera", run.whole().get(0).weights(), resumed.get(0).weights());
    LoraWeights ada = resumed.get(1).weights();
    assertThat(resumed.get(1).outcome().status()).isEqualTo(AdapterStatus.OK);
    int kept = 0;
    for (LoraWeights.Module mod : ada.modules()) {
      for (boolean k : ada.allocator().kept(mod.name())) {
        kept += k ? 1 : 0;
      }
    }
    assertThat(kept).as("AdaLoRA kept ranks after resume").isEqualTo(2 * ada.modules().size());
  }

  /** PEFT's budget_schedule, written out here: the cubic decrease and the phases around it. */
  @Test
  void budgetScheduleFollowsPeftsFormula() {
    RankAllocator.Schedule s = new RankAllocator.Schedule(2, 3, 2, 0.85, 0.85);
    int init = 36;
    int target = 24;
    int total = 20;
    for (int step = 0; step < total; step++) {
      RankAllocator.Budget b = s.budget(step, init, target, total);
      int want;
      boolean mask;
      if (step <= 2) {
        want = init;
        mask = false;
      } else if (step > total - 3) {
        want = target;
        mask = true;
      } else {
        double mul = 1 - (step - 2) / (double) (total - 3 - 2);
        want = (int) Math.floor((init - target) * mul * mul * mul + target);
        mask = step % 2 == 0;
      }
      assertThat(b).as("step %d", step).isEqualTo(new RankAllocator.Budget(want, mask));
    }
    assertThat(s.budget(5, init, target, total))
        .as("12 · (1 − 3/15)³ + 24 = 30.144")
        .isEqualTo(new RankAllocator.Budget(30, false));
    assertThat(s.budget(6, init, target, total))
        .as("12 · (1 − 4/15)³ + 24 = 28.73")
        .isEqualTo(new RankAllocator.Budget(28, true));
    assertThat(RankAllocator.Schedule.PEFT_DEFAULTS.budget(9, 42, 28, 10))
        .as("PEFT defaults: the last step (global_step 9 of 10) is at the target")
        .isEqualTo(new RankAllocator.Budget(28, true));
  }

  /**
   * One scoring step from zero EMAs gives Ī = (1 − β1) I and Ū = (1 − β2) β1 I, so each entry's
   * score is (1 − β1)(1 − β2) β1 I², I = |p · ∇p|; a triplet's score is E's plus the row mean of
   * A's and the column mean of B's. Then masking to a budget keeps exactly the highest-scoring
   * triplets.
   */
  @Test
  void importanceScoresAreTheTripletSumsOfPeftsSmoothedSensitivity() {
    ModelWeights base = CheckpointLoader.load(data.modelDir(), DataType.DOUBLE);
    LoraWeights w =
        VeraAdaLoraGradientTest.movedAdaLora(
            base,
            new LoraConfig(
                2, 4, 0, List.of(Projection.Q, Projection.UP), false, LoraMethod.ADALORA),
            5);
    randomGrads(w, new Random(1));
    RankAllocator alloc = new RankAllocator();
    alloc.updateScores(w);
    Map<String, double[]> scores = alloc.tripletScores(w);
    double c = 0.15 * 0.15 * 0.85;
    for (LoraWeights.Module m : w.modules()) {
      double[][] a = m.a().toDoubleMatrix();
      double[][] ga = m.gradA().toDoubleMatrix();
      double[][] b = m.b().toDoubleMatrix();
      double[][] gb = m.gradB().toDoubleMatrix();
      for (int i = 0; i < a.length; i++) {
        double sa = 0;
        for (int j = 0; j < a[i].length; j++) {
          sa += c * Math.pow(a[i][j] * ga[i][j], 2);
        }
        double sb = 0;
        for (int k = 0; k < b.length; k++) {
          sb += c * Math.pow(b[k][i] * gb[k][i], 2);
        }
        double se =
            c
                * Math.pow(
                    m.state(AdaLoraState.class).e().getDouble(i, 0)
                        * m.state(AdaLoraState.class).gradE().getDouble(i, 0),
                    2);
        double want = se + sa / a[i].length + sb / b.length;
        assertThat(scores.get(m.name())[i])
            .as("%s triplet %d", m.name(), i)
            .isCloseTo(want, within(1e-12 * Math.max(want, 1e-30)));
      }
    }
    int budget = 5; // of init 3 · 4 modules = 12
    Map<String, boolean[]> pattern = alloc.maskToBudget(w, budget);
    double[] all =
        scores.values().stream().flatMapToDouble(java.util.Arrays::stream).sorted().toArray();
    double cut = all[all.length - budget - 1];
    int kept = 0;
    for (LoraWeights.Module m : w.modules()) {
      for (int i = 0; i < 3; i++) {
        boolean want = scores.get(m.name())[i] > cut;
        assertThat(pattern.get(m.name())[i]).as("%s rank %d kept", m.name(), i).isEqualTo(want);
        kept += want ? 1 : 0;
        assertThat(m.state(AdaLoraState.class).e().getDouble(i, 0) == 0)
            .as("%s E[%d] zero", m.name(), i)
            .isEqualTo(!want);
      }
    }
    assertThat(kept).isEqualTo(budget);
  }

  /**
   * Driving the allocator as the trainer does (gradients, an update that regrows masked E, then
   * update_and_allocate) with tinit 1, tfinal 2 over 8 steps: no mask up to tinit, the cubic budget
   * after it, exactly the target at step total − tfinal, and that final pattern re-applied after.
   */
  @Test
  void maskingReachesTheTargetBudgetByTfinalAndKeepsIt() {
    ModelWeights base = CheckpointLoader.load(data.modelDir(), DataType.DOUBLE);
    LoraWeights w =
        VeraAdaLoraGradientTest.movedAdaLora(
            base,
            new LoraConfig(2, 4, 0, List.of(Projection.values()), false, LoraMethod.ADALORA),
            6);
    RankAllocator.Schedule sch = new RankAllocator.Schedule(1, 2, 1, 0.85, 0.85);
    RankAllocator alloc = new RankAllocator(sch);
    int total = 8;
    int init = 3 * w.modules().size();
    int target = 2 * w.modules().size();
    Random rnd = new Random(3);
    Map<String, boolean[]> finalPattern = null;
    for (int step = 0; step < total; step++) {
      randomGrads(w, rnd);
      for (LoraWeights.Module m : w.modules()) {
        m.state(AdaLoraState.class)
            .e()
            .addi(
                VeraAdaLoraGradientTest.randn(
                    rnd, m.state(AdaLoraState.class).e(), 0.1)); // "AdamW"
      }
      alloc.updateAndAllocate(w, step, total);
      int nonzero = 0;
      for (LoraWeights.Module m : w.modules()) {
        for (int i = 0; i < 3; i++) {
          nonzero += m.state(AdaLoraState.class).e().getDouble(i, 0) != 0 ? 1 : 0;
        }
      }
      if (step <= 1) {
        assertThat(alloc.rankPattern()).as("step %d: no mask during tinit", step).isNull();
        assertThat(nonzero).isEqualTo(init);
      } else if (step < total - 2) {
        double mul = 1 - (step - 1) / (double) (total - 2 - 1);
        int budget = (int) ((init - target) * mul * mul * mul + target);
        assertThat(nonzero).as("step %d: E kept = cubic budget", step).isEqualTo(budget);
      } else {
        assertThat(nonzero).as("step %d: E kept = target", step).isEqualTo(target);
        if (step == total - 2) {
          finalPattern = new java.util.HashMap<>();
          for (Map.Entry<String, boolean[]> e : alloc.rankPattern().entrySet()) {
            finalPattern.put(e.getKey(), e.getValue().clone());
          }
        }
        for (LoraWeights.Module m : w.modules()) {
          for (int i = 0; i < 3; i++) {
            assertThat(m.state(AdaLoraState.class).e().getDouble(i, 0) != 0)
                .as("step %d %s E[%d] follows the final pattern", step, m.name(), i)
                .isEqualTo(finalPattern.get(m.name())[i]);
          }
        }
      }
    }
  }

  private static void randomGrads(LoraWeights w, Random rnd) {
    for (LoraWeights.Trainable t : w.trainables()) {
      INDArray g = Nd4j.randn(rnd.nextLong(), t.grad().shape()).castTo(t.grad().dataType());
      t.grad().assign(g);
    }
  }
}
