package io.loraspark.train.loop;

import static io.loraspark.train.model.TestModels.rows;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.loraspark.train.lora.AdapterChain;
import io.loraspark.train.lora.AdapterParent;
import io.loraspark.train.lora.DoraState;
import io.loraspark.train.lora.LoraConfig;
import io.loraspark.train.lora.LoraMethod;
import io.loraspark.train.lora.LoraWeights;
import io.loraspark.train.lora.PeftAdapter;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Projection;
import io.loraspark.train.model.Transformer;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.RegisterExtension;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Children of one saved parent chain (a DoRA grandparent ← a LoRA parent, as PEFT directories)
 * trained fused with a root adapter, against each trained alone; the chain's eval loss is the
 * children's baseline; a child whose method reads W itself is refused.
 */
class ChainTrainingTest {
  @RegisterExtension
  static final TrainingFixture data =
      new TrainingFixture(true, 9, rows(30, 11, 12), rows(6, 12, 12));

  static final List<Projection> ALL = List.of(Projection.values());

  /** grandparent (DoRA, moved off its init) ← parent (LoRA), saved; returns the parent. */
  static AdapterParent savedChain(ModelWeights base, Path dir) {
    Random rnd = new Random(4);
    LoraWeights gp =
        LoraWeights.init(
            base, new LoraConfig(2, 4, 0, ALL, false, LoraMethod.DORA), 5, DataType.FLOAT);
    for (LoraWeights.Module m : gp.modules()) {
      m.b().assign(Nd4j.randn(rnd.nextLong(), m.b().shape()).muli(0.2).castTo(DataType.FLOAT));
      m.state(DoraState.class)
          .magnitude()
          .muli(
              Nd4j.rand(rnd.nextLong(), m.state(DoraState.class).magnitude().shape())
                  .addi(0.5)
                  .castTo(DataType.FLOAT));
    }
    PeftAdapter.save(dir.resolve("gp"), gp, null);
    LoraWeights p =
        LoraWeights.init(
            base,
            new LoraConfig(3, 6, 0, List.of(Projection.Q, Projection.DOWN), false),
            6,
            DataType.FLOAT);
    for (LoraWeights.Module m : p.modules()) {
      m.b().assign(Nd4j.randn(rnd.nextLong(), m.b().shape()).muli(0.2).castTo(DataType.FLOAT));
    }
    PeftAdapter.save(dir.resolve("p"), p, null);
    AdapterChain.record(dir.resolve("p"), AdapterParent.of(dir.resolve("gp").toString()));
    return AdapterParent.of(dir.resolve("p").toString());
  }

  static AdapterSpec child(String id, LoraMethod method, AdapterParent parent, long seed) {
    return new AdapterSpec(
        id,
        TrainingFixture.lora(method, 2, method == LoraMethod.LORA ? 0.1 : 0.0),
        TrainingFixture.cosine(4, 3, 4.0, seed),
        parent);
  }

  /**
   * Done-when: children of one parent fused with a root adapter equal each trained alone, in
   * double, within 1e-9 relative (as {@code FusedTrainerTest}: far above double rounding after four
   * Adam steps, far below any leak of one adapter's chain into another's rows).
   */
  @Test
  void childrenOfOneParentFusedEqualEachAlone(@TempDir Path dir) {
    Transformer m = data.model(DataType.DOUBLE);
    AdapterParent parent = savedChain(m.weights(), dir);
    List<AdapterSpec> specs =
        List.of(
            child("lora-child", LoraMethod.LORA, parent, 1),
            child("vera-child", LoraMethod.VERA, parent, 2),
            new AdapterSpec(
                "root",
                TrainingFixture.lora(LoraMethod.LORA, 2, 0.0),
                TrainingFixture.cosine(4, 3, 4.0, 3)));
    List<TrainedAdapter> fused =
        data.fusedThenEachAlone(
            m,
            specs,
            (s, f, alone) -> {
              assertThat(f.outcome().status()).isEqualTo(AdapterStatus.OK);
              assertThat(FusedTrainerTest.maxRelDiff(f.weights(), alone.weights()))
                  .as("adapter %s", s.id())
                  .isLessThan(1e-9);
              assertThat(f.outcome().evalLoss())
                  .as("adapter %s eval loss", s.id())
                  .isCloseTo(alone.outcome().evalLoss(), org.assertj.core.data.Offset.offset(1e-9));
            });
    assertThat(fused.get(0).outcome().baseEvalLoss())
        .as("a child's baseline is its parent chain's eval loss")
        .isEqualTo(fused.get(1).outcome().baseEvalLoss())
        .isNotCloseTo(
            fused.get(2).outcome().baseEvalLoss(), org.assertj.core.data.Offset.offset(1e-6));
  }

  @Test
  void aChildWhoseMethodReadsWItselfIsRefused(@TempDir Path dir) {
    Transformer m = data.model(DataType.FLOAT);
    AdapterParent parent = savedChain(m.weights(), dir);
    assertThatThrownBy(
            () -> data.trainer(m, List.of(child("dora-child", LoraMethod.DORA, parent, 1))))
        .hasMessageContaining("adapter dora-child: method dora reads W itself")
        .hasMessageNotContaining("\n");
  }

  @Test
  void aParentThatChangedAfterPlanningIsRefused(@TempDir Path dir) {
    Transformer m = data.model(DataType.FLOAT);
    AdapterParent parent = savedChain(m.weights(), dir);
    PeftAdapter.save(
        dir.resolve("p"),
        LoraWeights.init(
            m.weights(), new LoraConfig(3, 6, 0, List.of(Projection.Q), false), 8, DataType.FLOAT),
        null);
    assertThatThrownBy(() -> data.trainer(m, List.of(child("c", LoraMethod.LORA, parent, 1))))
        .isInstanceOf(AdapterChain.ParentChangedException.class)
        .hasMessageContaining(
            "parent " + dir.resolve("p") + " changed since the child was planned");
  }
}
