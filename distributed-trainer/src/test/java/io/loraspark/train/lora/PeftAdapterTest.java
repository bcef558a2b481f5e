package io.loraspark.train.lora;

import static io.loraspark.train.lora.LoraTestModels.bits;
import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.Projection;
import io.loraspark.train.safetensors.DType;
import io.loraspark.train.safetensors.SafetensorsFile;
import io.loraspark.train.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

/** Save/load of the PEFT adapter directory: layout, config fields, bit-exact round trip. */
class PeftAdapterTest {

  static final ModelConfig MODEL = LoraTestModels.smallLlama();
  static final List<Projection> QVD = List.of(Projection.Q, Projection.V, Projection.DOWN);

  @TempDir Path tmp;

  @Test
  void savedAdapterLoadsBackWithBitIdenticalWeightsAndSameConfig() {
    LoraConfig config = new LoraConfig(4, 8, 0.05, List.of(Projection.values()), true);
    LoraWeights saved = LoraTestModels.adapter(MODEL, config, 7);
    LoraWeights.Module first = saved.modules().iterator().next();
    first.b().putScalar(0, 0, -0.0f);
    first.b().putScalar(0, 1, Float.MIN_VALUE);
    first.a().putScalar(0, 0, Float.MAX_VALUE);

    PeftAdapter.save(tmp, saved, "stories/base");
    LoraWeights loaded = PeftAdapter.load(tmp, MODEL, DataType.FLOAT);

    assertThat(loaded.config()).as("config read back from adapter_config.json").isEqualTo(config);
    assertThat(loaded.modules()).as("modules").hasSameSizeAs(saved.modules());
    for (LoraWeights.Module m : saved.modules()) {
      LoraWeights.Module l = loaded.module(m.layer(), m.proj());
      assertThat(bits(l.a())).as("bits of A of %s", m.name()).isEqualTo(bits(m.a()));
      assertThat(bits(l.b())).as("bits of B of %s", m.name()).isEqualTo(bits(m.b()));
    }
  }

  @Test
  void adapterConfigHasEveryPeftLoraFieldSortedAndPythonFormatted() throws IOException {
    PeftAdapter.save(tmp, LoraTestModels.adapter(MODEL, LoraTestModels.lora(4, 8, QVD), 1), "m/x");

    String text = Files.readString(tmp.resolve("adapter_config.json"));
    JsonNode n = new ObjectMapper().readTree(text);

    assertThat(n.get("peft_type").textValue()).as("peft_type").isEqualTo("LORA");
    assertThat(n.get("task_type").textValue()).as("task_type").isEqualTo("CAUSAL_LM");
    assertThat(n.get("base_model_name_or_path").textValue()).as("base model").isEqualTo("m/x");
    assertThat(n.get("r").isInt() && n.get("r").intValue() == 4).as("r is the int 4").isTrue();
    assertThat(n.get("lora_alpha").isIntegralNumber()).as("integral alpha as int").isTrue();
    assertThat(n.get("lora_alpha").intValue()).as("lora_alpha").isEqualTo(8);
    assertThat(n.get("lora_dropout").doubleValue()).as("lora_dropout").isEqualTo(0.0);
    assertThat(n.get("target_modules").toString())
        .as("target_modules sorted by name")
        .isEqualTo("[\"down_proj\",\"q_proj\",\"v_proj\"]");
    assertThat(n.get("use_rslora").booleanValue()).as("use_rslora").isFalse();
    assertThat(n.get("bias").textValue()).as("bias").isEqualTo("none");
    assertThat(n.get("fan_in_fan_out").booleanValue()).as("fan_in_fan_out").isFalse();
    assertThat(n.get("init_lora_weights").booleanValue()).as("init_lora_weights").isTrue();
    assertThat(n.get("inference_mode").booleanValue()).as("inference_mode").isTrue();
    assertThat(n.get("use_dora").booleanValue()).as("use_dora").isFalse();
    for (String key :
        List.of(
            "modules_to_save",
            "layers_to_transform",
            "layers_pattern",
            "revision",
            "auto_mapping")) {
      assertThat(n.has(key) && n.get(key).isNull()).as("%s present and null", key).isTrue();
    }
    for (String key : List.of("rank_pattern", "alpha_pattern")) {
      assertThat(n.get(key).isObject() && n.get(key).isEmpty()).as("%s is {}", key).isTrue();
    }
    List<String> keys = new ArrayList<>();
    n.fieldNames().forEachRemaining(keys::add);
    assertThat(keys).as("keys in sorted order, as PEFT's sort_keys=True").isSorted();
    assertThat(text)
        .as("json.dumps(indent=2) layout")
        .startsWith("{\n  \"alpha_pattern\": {},\n  \"auto_mapping\": null,")
        .contains("\n  \"r\": 4,\n")
        .contains(
            "\"target_modules\": [\n    \"down_proj\",\n    \"q_proj\",\n    \"v_proj\"\n  ],")
        .endsWith("\n}");
  }

  @Test
  void nonAsciiBaseModelIsEscapedAsPythonJsonDoes() throws IOException {
    LoraConfig config = new LoraConfig(2, 2.5, 0.1, QVD, false);
    PeftAdapter.save(tmp, LoraTestModels.adapter(MODEL, config, 1), "/m\u00fcde/\ud83e\udd99");

    String text = Files.readString(tmp.resolve("adapter_config.json"));

    assertThat(text)
        .as("ensure_ascii escapes, lowercase hex, surrogate pairs; fractional alpha as a float")
        .contains("\"base_model_name_or_path\": \"/m\\u00fcde/\\ud83e\\udd99\",")
        .contains("\"lora_alpha\": 2.5,")
        .contains("\"lora_dropout\": 0.1,");
    assertThat(PeftAdapter.load(tmp, MODEL, DataType.FLOAT).config())
        .as("config read back")
        .isEqualTo(config);
  }

  @Test
  void weightsFileUsesPeftKeysShapesF32AndPtMetadata() {
    LoraConfig config = LoraTestModels.lora(3, 6, QVD);
    PeftAdapter.save(tmp, LoraTestModels.adapter(MODEL, config, 2), null);

    try (SafetensorsFile f = SafetensorsFile.open(tmp.resolve("adapter_model.safetensors"))) {
      assertThat(f.metadata()).as("metadata").isEqualTo(Map.of("format", "pt"));
      assertThat(f.names()).as("tensor count: 2 layers x 3 targets x (A, B)").hasSize(12);
      String q = "base_model.model.model.layers.1.self_attn.q_proj";
      assertThat(f.info(q + ".lora_A.weight").shape()).as("A is [r, in]").containsExactly(3, 16);
      assertThat(f.info(q + ".lora_B.weight").shape()).as("B is [out, r]").containsExactly(16, 3);
      String down = "base_model.model.model.layers.0.mlp.down_proj";
      assertThat(f.info(down + ".lora_A.weight").shape()).as("down A").containsExactly(3, 24);
      assertThat(f.info(down + ".lora_B.weight").shape()).as("down B").containsExactly(16, 3);
      for (String name : f.names()) {
        assertThat(f.info(name).dtype()).as("dtype of %s", name).isEqualTo(DType.F32);
      }
    }
  }

  @Test
  void keysWithTheDefaultAdapterNameAreAccepted() {
    LoraWeights saved = LoraTestModels.adapter(MODEL, LoraTestModels.lora(2, 4, QVD), 3);
    PeftAdapter.save(tmp, saved, "m");
    AdapterFiles.rewriteWeights(
        tmp, (name, t) -> Map.of(name.replace(".weight", ".default.weight"), t));

    LoraWeights loaded = PeftAdapter.load(tmp, MODEL, DataType.FLOAT);

    for (LoraWeights.Module m : saved.modules()) {
      LoraWeights.Module l = loaded.module(m.layer(), m.proj());
      assertThat(bits(l.a())).as("A of %s", m.name()).isEqualTo(bits(m.a()));
      assertThat(bits(l.b())).as("B of %s", m.name()).isEqualTo(bits(m.b()));
    }
  }

  @Test
  void halfPrecisionTensorsAreWidenedExactly() {
    LoraWeights saved = LoraTestModels.adapter(MODEL, LoraTestModels.lora(2, 4, QVD), 4);
    for (LoraWeights.Module m : saved.modules()) {
      for (var arr : List.of(m.a(), m.b())) {
        float[] v = new float[(int) arr.length()];
        for (int i = 0; i < v.length; i++) {
          v[i] = ((i * 7 + m.layer()) % 33 - 16) / 64f; // exact in F16 and BF16
        }
        arr.assign(Nd4j.create(v, arr.shape(), 'c'));
      }
    }
    PeftAdapter.save(tmp, saved, "m");
    AdapterFiles.rewriteWeights(
        tmp,
        (name, t) -> {
          DType d = name.contains("lora_A") ? DType.F16 : DType.BF16;
          return Map.of(name, new SafetensorsWriter.Tensor(t.shape(), t.data(), d));
        });

    LoraWeights loaded = PeftAdapter.load(tmp, MODEL, DataType.DOUBLE);

    for (LoraWeights.Module m : saved.modules()) {
      LoraWeights.Module l = loaded.module(m.layer(), m.proj());
      assertThat(l.a().dataType()).as("requested dtype").isEqualTo(DataType.DOUBLE);
      assertThat(bits(l.a())).as("F16 A of %s", m.name()).isEqualTo(bits(m.a()));
      assertThat(bits(l.b())).as("BF16 B of %s", m.name()).isEqualTo(bits(m.b()));
    }
  }
}
