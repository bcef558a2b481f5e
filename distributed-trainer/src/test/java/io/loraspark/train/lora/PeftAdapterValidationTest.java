package io.loraspark.train.lora;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.Projection;
import io.loraspark.train.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.assertj.core.api.AbstractThrowableAssert;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.linalg.api.buffer.DataType;

/** Every malformed or unsupported adapter is refused with one line naming the file and key. */
class PeftAdapterValidationTest {

  static final ModelConfig MODEL = LoraTestModels.smallLlama();
  static final String Q0 = "base_model.model.model.layers.0.self_attn.q_proj";

  @TempDir Path dir;

  @BeforeEach
  void saveValidAdapter() {
    LoraConfig config =
        LoraTestModels.lora(4, 8, List.of(Projection.Q, Projection.V, Projection.DOWN));
    PeftAdapter.save(dir, LoraTestModels.adapter(MODEL, config, 11), "base");
  }

  private AbstractThrowableAssert<?, ? extends Throwable> assertLoadFails(String what) {
    return assertThatThrownBy(() -> PeftAdapter.load(dir, MODEL, DataType.FLOAT))
        .as(what)
        .isInstanceOf(IllegalArgumentException.class)
        .satisfies(e -> assertThat(e.getMessage()).as("one line").doesNotContain("\n"));
  }

  static Stream<Arguments> configProblems() {
    return Stream.of(
        config(
            "peft_type is another method",
            n -> n.put("peft_type", "PREFIX_TUNING"),
            "peft_type",
            "supported: \"LORA\", \"VERA\", \"ADALORA\" or lora-spark's \"DELTA_LORA\""),
        config("peft_type is missing", n -> n.remove("peft_type"), "peft_type is missing", "LORA"),
        config(
            "task_type is not a causal LM",
            n -> n.put("task_type", "SEQ_CLS"),
            "task_type",
            "CAUSAL_LM"),
        config("r is missing", n -> n.remove("r"), "r is missing", ">= 1"),
        config("r is zero", n -> n.put("r", 0), "r is 0", ">= 1"),
        config("r is fractional", n -> n.put("r", 2.5), "r is 2.5", "integer"),
        config(
            "lora_alpha is missing", n -> n.remove("lora_alpha"), "lora_alpha is missing", "> 0"),
        config("lora_alpha is negative", n -> n.put("lora_alpha", -4), "lora_alpha is -4", "> 0"),
        config("lora_alpha is a string", n -> n.put("lora_alpha", "16"), "lora_alpha", "number"),
        config("lora_dropout is 1.5", n -> n.put("lora_dropout", 1.5), "lora_dropout", "[0, 1)"),
        config(
            "use_rslora is a string",
            n -> n.put("use_rslora", "yes"),
            "use_rslora",
            "true or false"),
        config(
            "target_modules is a number",
            n -> n.put("target_modules", 7),
            "target_modules is 7",
            "a regex string or \"all-linear\""),
        config(
            "target_modules names GPT-2's c_attn",
            n -> n.putArray("target_modules").add("q_proj").add("c_attn"),
            "target_modules names \"c_attn\"",
            "[q_proj, k_proj, v_proj, o_proj, gate_proj"),
        config(
            "target_modules is empty",
            n -> n.putArray("target_modules"),
            "target_modules",
            "non-empty"),
        config(
            "target_modules is missing",
            n -> n.remove("target_modules"),
            "target_modules is missing",
            "q_proj"),
        config(
            "use_dora is not a boolean",
            n -> n.put("use_dora", "yes"),
            "use_dora is \"yes\"",
            "expected true or false"),
        config(
            "fan_in_fan_out is on",
            n -> n.put("fan_in_fan_out", true),
            "fan_in_fan_out is true",
            "valid: false"),
        config(
            "rank_pattern gives a negative rank",
            n -> n.putObject("rank_pattern").put("q_proj", -8),
            "rank_pattern gives q_proj the value -8",
            "integer rank >= 1"),
        config(
            "alpha_pattern gives a negative alpha",
            n -> n.putObject("alpha_pattern").put("v_proj", -2),
            "alpha_pattern gives v_proj the value -2",
            "finite number > 0"),
        config(
            "layers_to_transform is a list of strings",
            n -> n.putArray("layers_to_transform").add("0"),
            "layers_to_transform holds \"0\"",
            "layer index >= 0"),
        config("bias is all", n -> n.put("bias", "all"), "bias is \"all\"", "valid: \"none\""),
        config(
            "modules_to_save is set",
            n -> n.putArray("modules_to_save").add("lm_head"),
            "modules_to_save is [\"lm_head\"]",
            "valid: null"));
  }

  private static Arguments config(
      String what, Consumer<ObjectNode> edit, String keyFragment, String validFragment) {
    return Arguments.of(what, edit, keyFragment, validFragment);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("configProblems")
  void configProblemIsRefusedNamingTheKey(
      String what, Consumer<ObjectNode> edit, String keyFragment, String validFragment) {
    AdapterFiles.editConfig(dir, edit);

    assertLoadFails(what)
        .hasMessageContaining("adapter_config.json")
        .hasMessageContaining(keyFragment)
        .hasMessageContaining(validFragment);
  }

  @Test
  void missingDirectoryIsRefused() {
    Path missing = dir.resolve("nope");
    assertThatThrownBy(() -> PeftAdapter.load(missing, MODEL, DataType.FLOAT))
        .as("a path that is not a directory")
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining(missing.toString())
        .hasMessageContaining("adapter_config.json");
  }

  @Test
  void missingConfigFileIsRefused() throws IOException {
    Files.delete(dir.resolve("adapter_config.json"));
    assertLoadFails("no adapter_config.json")
        .hasMessageContaining("adapter_config.json is missing")
        .hasMessageContaining("adapter_model.safetensors");
  }

  @Test
  void missingWeightsFileIsRefusedAndPickleIsNeverRead() throws IOException {
    Files.delete(dir.resolve("adapter_model.safetensors"));
    Files.writeString(dir.resolve("adapter_model.bin"), "not loaded");
    assertLoadFails("no adapter_model.safetensors")
        .hasMessageContaining("adapter_model.safetensors is missing")
        .hasMessageContaining("adapter_model.bin is a pickle");
  }

  @Test
  void malformedJsonIsRefusedWithItsPosition() throws IOException {
    Files.writeString(dir.resolve("adapter_config.json"), "{\"r\": 4,}");
    assertLoadFails("trailing comma")
        .hasMessageContaining("adapter_config.json is not valid JSON at line 1");
  }

  @Test
  void duplicateJsonKeyIsRefused() throws IOException {
    Files.writeString(
        dir.resolve("adapter_config.json"), "{\"peft_type\": \"LORA\", \"r\": 4, \"r\": 8}");
    assertLoadFails("duplicate r").hasMessageContaining("Duplicate field 'r'");
  }

  @Test
  void nonObjectJsonIsRefused() throws IOException {
    Files.writeString(dir.resolve("adapter_config.json"), "[1, 2]");
    assertLoadFails("top-level array").hasMessageContaining("must hold a JSON object");
  }

  @Test
  void missingTensorIsRefusedNamingIt() {
    AdapterFiles.rewriteWeights(
        dir, (name, t) -> name.equals(Q0 + ".lora_B.weight") ? Map.of() : Map.of(name, t));
    assertLoadFails("lora_B of layer 0 q_proj removed")
        .hasMessageContaining("adapter_model.safetensors")
        .hasMessageContaining("tensor '" + Q0 + ".lora_B.weight' is missing")
        .hasMessageContaining("[q_proj, v_proj, down_proj]");
  }

  @Test
  void tensorForALayerTheModelLacksIsRefused() {
    String extra = "base_model.model.model.layers.2.self_attn.q_proj.lora_A.weight";
    AdapterFiles.rewriteWeights(dir, (name, t) -> withExtra(name, t, extra));
    assertLoadFails("tensor for layer 2 of a 2-layer model")
        .hasMessageContaining("unexpected tensor '" + extra + "'")
        .hasMessageContaining("2 layers");
  }

  @Test
  void tensorForAnUntargetedModuleIsRefused() {
    String extra = "base_model.model.model.layers.0.self_attn.k_proj.lora_A.weight";
    AdapterFiles.rewriteWeights(dir, (name, t) -> withExtra(name, t, extra));
    assertLoadFails("k_proj tensor while target_modules lacks k_proj")
        .hasMessageContaining("unexpected tensor '" + extra + "'")
        .hasMessageContaining("target_modules");
  }

  @Test
  void tensorForALayerOutsideLayersToTransformIsRefused() {
    AdapterFiles.editConfig(dir, n -> n.putArray("layers_to_transform").add(0));
    assertLoadFails("layer 1's tensors while layers_to_transform is [0]")
        .hasMessageContaining("unexpected tensor 'base_model.model.model.layers.1.")
        .hasMessageContaining("for its 3 selected modules");
  }

  @Test
  void sameWeightUnderBothKeyFormsIsRefused() {
    String dup = Q0 + ".lora_A.default.weight";
    AdapterFiles.rewriteWeights(dir, (name, t) -> withExtra(name, t, dup));
    assertLoadFails("plain and .default. forms of one tensor")
        .hasMessageContaining(dup)
        .hasMessageContaining("keep only '" + Q0 + ".lora_A.weight'");
  }

  @Test
  void shapeThatDisagreesWithRankIsRefused() {
    AdapterFiles.editConfig(dir, n -> n.put("r", 2));
    assertLoadFails("r=2 in the config, r=4 in the tensors")
        .hasMessageContaining("tensor '" + Q0 + ".lora_A.weight' has shape [4, 16]")
        .hasMessageContaining("r=2")
        .hasMessageContaining("[2, 16]");
  }

  @Test
  void shapeForAnotherModelIsRefused() {
    ModelConfig wider =
        LoraTestModels.parse(
            LoraTestModels.configJson("LlamaForCausalLM", false, false)
                .replace("\"intermediate_size\": 24", "\"intermediate_size\": 32"));
    assertThatThrownBy(() -> PeftAdapter.load(dir, wider, DataType.FLOAT))
        .as("adapter trained for F=24 loaded on F=32")
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("mlp.down_proj.lora_A.weight' has shape [4, 24]")
        .hasMessageContaining("[4, 32]");
  }

  @Test
  void integerTensorIsRefusedNamingItsDtype() {
    AdapterFiles.writeRawWeights(dir, Q0 + ".lora_A.weight", "I32", 4, 16, 4);
    assertLoadFails("I32 tensor")
        .hasMessageContaining("adapter_model.safetensors")
        .hasMessageContaining(Q0 + ".lora_A.weight")
        .hasMessageContaining("'I32'")
        .hasMessageContaining("F32, F16 and BF16");
  }

  @Test
  void nonFiniteWeightIsRefused() {
    AdapterFiles.rewriteWeights(
        dir,
        (name, t) -> {
          if (name.equals(Q0 + ".lora_B.weight")) {
            float[] d = t.data().clone();
            d[5] = Float.NaN;
            return Map.of(name, SafetensorsWriter.Tensor.f32(t.shape(), d));
          }
          return Map.of(name, t);
        });
    assertLoadFails("NaN in B")
        .hasMessageContaining("tensor '" + Q0 + ".lora_B.weight' holds NaN at flat index 5")
        .hasMessageContaining("finite");
  }

  private static Map<String, SafetensorsWriter.Tensor> withExtra(
      String name, SafetensorsWriter.Tensor t, String extra) {
    Map<String, SafetensorsWriter.Tensor> out = new LinkedHashMap<>();
    out.put(name, t);
    if (name.equals(Q0 + ".lora_A.weight")) {
      out.put(
          extra, SafetensorsWriter.Tensor.f32(t.shape(), Arrays.copyOf(t.data(), t.data().length)));
    }
    return out;
  }
}
