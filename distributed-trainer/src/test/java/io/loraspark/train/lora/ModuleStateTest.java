package io.loraspark.train.lora;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Projection;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * Each method's module state, against a table written here from PEFT's state dicts: which state
 * record a module holds, its arrays' shapes, and the trained tensors it adds after A and B, with
 * their PEFT names and LoRA+ groups. A method added to {@link LoraMethod} without a row here fails.
 */
class ModuleStateTest {

  private static final ModelWeights BASE = CheckpointLoader.load(LoraTestModels.STORIES);
  private static final int R = 4;

  /** Trained tensors of one module, in order, as "name suffix:LoRA+ group B". */
  private static final Map<LoraMethod, List<String>> TRAINABLES =
      Map.of(
          LoraMethod.LORA, List.of("lora_A.weight:false", "lora_B.weight:true"),
          LoraMethod.LORA_FA, List.of("lora_B.weight:true"),
          LoraMethod.DORA,
              List.of("lora_A.weight:false", "lora_B.weight:true", "lora_magnitude_vector:true"),
          LoraMethod.PISSA, List.of("lora_A.weight:false", "lora_B.weight:true"),
          LoraMethod.VERA, List.of("vera_lambda_d:true", "vera_lambda_b:true"),
          LoraMethod.ADALORA, List.of("lora_A.weight:false", "lora_B.weight:true", "lora_E:false"),
          LoraMethod.DELTA_LORA, List.of("lora_A.weight:false", "lora_B.weight:true"));

  private static LoraWeights adapter(LoraMethod method) {
    LoraConfig c = new LoraConfig(R, 2 * R, 0, List.of(Projection.Q, Projection.UP), false, method);
    return LoraWeights.init(BASE, c, 3, DataType.FLOAT);
  }

  @ParameterizedTest
  @EnumSource(LoraMethod.class)
  void everyMethodListsItsTrainedTensorsUnderPeftNames(LoraMethod method) {
    assertThat(TRAINABLES).as("the table names every method").containsKey(method);
    LoraWeights w = adapter(method);
    List<String> got = new ArrayList<>();
    for (LoraWeights.Trainable t : w.trainables()) {
      assertThat(t.grad().shape()).as("%s grad shape", t.name()).isEqualTo(t.value().shape());
      assertThat(t.grad()).as("%s grad is its own array", t.name()).isNotSameAs(t.value());
      got.add(t.name() + ":" + t.loraPlusB());
    }
    List<String> want = new ArrayList<>();
    for (LoraWeights.Module m : w.modules()) {
      TRAINABLES.get(method).forEach(s -> want.add(m.name() + "." + s));
    }
    assertThat(got).as("%s trainables", method.key()).containsExactlyElementsOf(want);
  }

  @Test
  void eachMethodHoldsItsOwnStateRecordWithItsShapes() {
    for (LoraMethod method : LoraMethod.values()) {
      for (LoraWeights.Module m : adapter(method).modules()) {
        long out = m.b().rows();
        long in = m.a().columns();
        long r = m.a().rows();
        String at = method.key() + " " + m.name();
        switch (method) {
          case LORA, LORA_FA -> assertThat(m.state()).as(at).isSameAs(ModuleState.NONE);
          case DORA -> {
            DoraState d = m.state(DoraState.class);
            assertThat(d.magnitude().shape()).as(at).containsExactly(out);
            assertThat(d.base())
                .as("%s W is the base's own array", at)
                .isSameAs(LoraWeights.frozenWeight(BASE, m.layer(), m.proj(), DataType.FLOAT));
          }
          case PISSA -> {
            PissaState p = m.state(PissaState.class);
            assertThat(p.a0().shape()).as(at).containsExactly(r, in);
            assertThat(p.b0().shape()).as(at).containsExactly(out, r);
          }
          case VERA -> {
            VeraState v = m.state(VeraState.class);
            assertThat(v.lambdaD().shape()).as(at).containsExactly(r);
            assertThat(v.lambdaB().shape()).as(at).containsExactly(out);
          }
          case ADALORA -> {
            assertThat(r).as("%s init_r = ⌈1.5·%d⌉", at, R).isEqualTo(6);
            assertThat(m.state(AdaLoraState.class).e().shape()).as(at).containsExactly(r, 1);
          }
          case DELTA_LORA -> {
            FrozenBranch k = m.state(DeltaState.class).snapshot();
            assertThat(k.a().shape()).as(at).containsExactly(r, in);
            assertThat(k.b().shape()).as(at).containsExactly(out, r);
            assertThat(k.on()).as("%s snapshot off before step K", at).isFalse();
          }
        }
      }
    }
  }

  @Test
  void earlierDenseDeltaLoraHoldsItsDenseUpdate() {
    LoraConfig c =
        new LoraConfig(R, 2 * R, 0, List.of(Projection.V), false, LoraMethod.DELTA_LORA)
            .withDeltaLora(DeltaLoraParams.DENSE);
    for (LoraWeights.Module m : LoraWeights.zeros(BASE.config(), c, DataType.FLOAT).modules()) {
      assertThat(m.state(DenseDeltaState.class).delta().shape())
          .as("%s ΔW [out, in]", m.name())
          .containsExactly(m.b().rows(), m.a().columns());
    }
  }

  @Test
  void askingForAnotherMethodsStateNamesTheModule() {
    LoraWeights.Module m = adapter(LoraMethod.VERA).modules().iterator().next();
    assertThatThrownBy(() -> m.state(DoraState.class))
        .isInstanceOf(IllegalStateException.class)
        .hasMessage("module " + m.name() + " holds VeraState, not DoraState");
  }
}
