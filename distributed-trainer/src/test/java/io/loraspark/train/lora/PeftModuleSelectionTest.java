package io.loraspark.train.lora;

import static io.loraspark.train.lora.LoraTestModels.bits;
import static io.loraspark.train.lora.LoraTestModels.mean;
import static io.loraspark.train.lora.LoraTestModels.scoringRows;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.train.loop.Evaluator;
import io.loraspark.train.model.Adapters;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.LayerWeights;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Projection;
import io.loraspark.train.model.TestModels;
import io.loraspark.train.model.TokenRow;
import io.loraspark.train.model.Transformer;
import io.loraspark.train.safetensors.SafetensorsFile;
import io.loraspark.train.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Consumer;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * PEFT 0.19 adapters that adapt only some layers (layers_to_transform, a regex target_modules,
 * exclude_modules) with per-module ranks and alphas (rank_pattern, alpha_pattern): the modules they
 * select, each module's rank and scaling, scoring against the merged model and a dense reference
 * built here, the save/load round trip, and the refusal of bad values.
 */
class PeftModuleSelectionTest {

  /** A random 4-layer Llama: C=16, 4 heads, 2 kv heads, F=24, V=37. */
  static final String CONFIG =
      TestModels.config("LlamaForCausalLM", false, false)
          .replace("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 4");

  /**
   * adapter_config.json as PEFT 0.19.1 writes it (json.dumps(indent=2, sort_keys=True)) for
   * target_modules [q_proj, v_proj, down_proj] on layers 0 and 2, v_proj at rank 2 and layer 2's
   * q_proj at alpha 7.
   */
  static final String LAYERS_CONFIG =
      """
      {
        "alora_invocation_tokens": null,
        "alpha_pattern": {
          "model.layers.2.self_attn.q_proj": 7
        },
        "arrow_config": null,
        "auto_mapping": null,
        "base_model_name_or_path": "random-llama",
        "bias": "none",
        "corda_config": null,
        "ensure_weight_tying": false,
        "eva_config": null,
        "exclude_modules": null,
        "fan_in_fan_out": false,
        "inference_mode": true,
        "init_lora_weights": true,
        "layer_replication": null,
        "layers_pattern": "layers",
        "layers_to_transform": [
          0,
          2
        ],
        "loftq_config": {},
        "lora_alpha": 8,
        "lora_bias": false,
        "lora_dropout": 0.05,
        "lora_ga_config": null,
        "megatron_config": null,
        "megatron_core": "megatron.core",
        "modules_to_save": null,
        "peft_type": "LORA",
        "peft_version": "0.19.1",
        "qalora_group_size": 16,
        "r": 4,
        "rank_pattern": {
          "v_proj": 2
        },
        "revision": null,
        "target_modules": [
          "down_proj",
          "q_proj",
          "v_proj"
        ],
        "target_parameters": null,
        "task_type": "CAUSAL_LM",
        "trainable_token_indices": null,
        "use_bdlora": null,
        "use_dora": false,
        "use_qalora": false,
        "use_rslora": false
      }""";

  /**
   * A PEFT 0.19.1 config with a regex target_modules (PEFT refuses it together with
   * layers_to_transform, so the layers are in the regex): q_proj, k_proj and up_proj of layers 1
   * and 3, less layer 3's MLP (exclude_modules regex); layer 1's k_proj at rank 3 and every other
   * k_proj at rank 2 (first match wins: the file order is not sorted), layer 1's up_proj at rank 3,
   * layer 3 at alpha 5; rsLoRA.
   */
  static final String REGEX_CONFIG =
      """
      {
        "alpha_pattern": {"layers\\\\.3\\\\..*": 5},
        "base_model_name_or_path": null,
        "bias": "none",
        "exclude_modules": "model\\\\.layers\\\\.3\\\\.mlp\\\\..*",
        "fan_in_fan_out": false,
        "inference_mode": true,
        "init_lora_weights": "gaussian",
        "layers_pattern": null,
        "layers_to_transform": null,
        "lora_alpha": 8,
        "lora_bias": false,
        "lora_dropout": 0.0,
        "peft_type": "LORA",
        "peft_version": "0.19.1",
        "r": 4,
        "rank_pattern": {
          "model\\\\.layers\\\\.1\\\\.self_attn\\\\.k_proj": 3,
          "k_proj": 2,
          "model.layers.1.mlp.up_proj": 3
        },
        "target_modules": "model\\\\.layers\\\\.[13]\\\\.(self_attn\\\\.[qk]_proj|mlp\\\\.up_proj)",
        "target_parameters": null,
        "task_type": "CAUSAL_LM",
        "use_dora": false,
        "use_rslora": true
      }""";

  /** Module name → {rank, scaling} that PEFT gives each module of {@link #LAYERS_CONFIG}. */
  static final Map<String, double[]> LAYERS_EXPECTED =
      Map.of(
          "model.layers.0.self_attn.q_proj", new double[] {4, 8.0 / 4},
          "model.layers.0.self_attn.v_proj", new double[] {2, 8.0 / 2},
          "model.layers.0.mlp.down_proj", new double[] {4, 8.0 / 4},
          "model.layers.2.self_attn.q_proj", new double[] {4, 7.0 / 4},
          "model.layers.2.self_attn.v_proj", new double[] {2, 8.0 / 2},
          "model.layers.2.mlp.down_proj", new double[] {4, 8.0 / 4});

  /** The same for {@link #REGEX_CONFIG} (rsLoRA: alpha / √r). */
  static final Map<String, double[]> REGEX_EXPECTED =
      Map.of(
          "model.layers.1.self_attn.q_proj", new double[] {4, 8.0 / 2},
          "model.layers.1.self_attn.k_proj", new double[] {3, 8.0 / Math.sqrt(3)},
          "model.layers.1.mlp.up_proj", new double[] {3, 8.0 / Math.sqrt(3)},
          "model.layers.3.self_attn.q_proj", new double[] {4, 5.0 / 2},
          "model.layers.3.self_attn.k_proj", new double[] {2, 5.0 / Math.sqrt(2)});

  @TempDir Path tmp;
  Path baseDir;
  ModelWeights base;

  @BeforeEach
  void writeBase() throws IOException {
    baseDir = LoraTestModels.writeRandomCheckpoint(tmp.resolve("base"), CONFIG, 5);
    base = CheckpointLoader.load(baseDir);
  }

  /**
   * Writes a PEFT adapter directory: {@code config} and, for every module of {@code expected}, a
   * lora_A [r, in] and lora_B [out, r] of N(0, 0.3) values (seeded), under PEFT's key names.
   */
  private Path writeAdapter(String name, String config, Map<String, double[]> expected)
      throws IOException {
    Path dir = Files.createDirectories(tmp.resolve(name));
    Files.writeString(dir.resolve(PeftAdapter.CONFIG_FILE), config);
    Map<String, SafetensorsWriter.Tensor> t = new LinkedHashMap<>();
    Random rnd = new Random(name.hashCode());
    for (int l = 0; l < base.config().numLayers(); l++) {
      for (Projection p : Projection.values()) {
        double[] e = expected.get(p.hfModule(l));
        if (e != null) {
          int r = (int) e[0];
          String key = PeftAdapter.PREFIX + p.hfModule(l);
          t.put(key + ".lora_A.weight", random(rnd, r, p.inFeatures(base.config())));
          t.put(key + ".lora_B.weight", random(rnd, p.outFeatures(base.config()), r));
        }
      }
    }
    SafetensorsWriter.write(dir.resolve(PeftAdapter.WEIGHTS_FILE), t, Map.of("format", "pt"));
    return dir;
  }

  private static SafetensorsWriter.Tensor random(Random rnd, int rows, int cols) {
    float[] v = new float[rows * cols];
    for (int i = 0; i < v.length; i++) {
      v[i] = (float) (0.3 * rnd.nextGaussian());
    }
    return SafetensorsWriter.Tensor.f32(new long[] {rows, cols}, v);
  }

  @Test
  void peft019LayersConfigSelectsItsLayersWithPerModuleRanksAndScalings() throws IOException {
    Path dir = writeAdapter("layers", LAYERS_CONFIG, LAYERS_EXPECTED);

    LoraWeights w = PeftAdapter.load(dir, base.config(), DataType.FLOAT);

    assertModules(w, LAYERS_EXPECTED);
    assertThat(w.module(1, Projection.Q)).as("layer 1 is not transformed").isNull();
    assertThat(w.module(3, Projection.DOWN)).as("layer 3 is not transformed").isNull();
    assertThat(w.module(0, Projection.K)).as("k_proj is not targeted").isNull();
    assertThat(w.scaling(w.module(0, Projection.Q)))
        .as("a module no pattern names has the config's scaling, exactly")
        .isEqualTo(w.config().scaling());
  }

  @Test
  void peft019RegexConfigSelectsMatchedModulesFirstPatternWinning() throws IOException {
    Path dir = writeAdapter("regex", REGEX_CONFIG, REGEX_EXPECTED);

    LoraWeights w = PeftAdapter.load(dir, base.config(), DataType.FLOAT);

    assertModules(w, REGEX_EXPECTED);
    assertThat(w.module(3, Projection.UP)).as("excluded by exclude_modules").isNull();
    assertThat(w.module(0, Projection.Q)).as("layer 0 is not in the regex").isNull();
  }

  @Test
  void allLinearTargetsTheSevenProjections() throws IOException {
    Map<String, double[]> every = new LinkedHashMap<>();
    for (int l = 0; l < 4; l++) {
      for (Projection p : Projection.values()) {
        every.put(p.hfModule(l), new double[] {4, 2});
      }
    }
    String config =
        LAYERS_CONFIG
            .replaceAll("(?s)\"target_modules\": \\[.*?\\]", "\"target_modules\": \"ALL-LINEAR\"")
            .replaceAll("(?s)\"layers_to_transform\": \\[.*?\\]", "\"layers_to_transform\": null")
            .replace("\"layers_pattern\": \"layers\"", "\"layers_pattern\": null")
            .replaceAll("(?s)\"(rank|alpha)_pattern\": \\{.*?\\}", "\"$1_pattern\": {}");

    LoraWeights w =
        PeftAdapter.load(writeAdapter("all", config, every), base.config(), DataType.FLOAT);

    assertModules(w, every);
    assertThat(w.config().selection())
        .as("all-linear is the list of seven")
        .isEqualTo(ModuleSelection.ALL);
  }

  /** Every module of {@code w} is one of {@code expected}, with its rank and scaling, and back. */
  private static void assertModules(LoraWeights w, Map<String, double[]> expected) {
    List<String> names = new ArrayList<>();
    for (LoraWeights.Module m : w.modules()) {
      names.add(m.name());
      double[] e = expected.get(m.name());
      assertThat(e).as("%s is expected", m.name()).isNotNull();
      assertThat(m.a().rows()).as("rank of A of %s", m.name()).isEqualTo((long) e[0]);
      assertThat(m.b().columns()).as("rank of B of %s", m.name()).isEqualTo((long) e[0]);
      assertThat(w.scaling(m)).as("scaling of %s", m.name()).isCloseTo(e[1], within(1e-15));
    }
    assertThat(names).as("modules").containsExactlyInAnyOrderElementsOf(expected.keySet());
  }

  @Test
  void scoringWithTheAdapterEqualsTheMergedModelAndTheDenseReference() throws IOException {
    for (String[] c : new String[][] {{"layers", LAYERS_CONFIG}, {"regex", REGEX_CONFIG}}) {
      Map<String, double[]> expected = c[0].equals("layers") ? LAYERS_EXPECTED : REGEX_EXPECTED;
      Path dir = writeAdapter(c[0], c[1], expected);
      LoraWeights w = PeftAdapter.load(dir, base, DataType.FLOAT);
      List<TokenRow> rows = scoringRows(base.config().vocabSize());

      double branch =
          mean(Evaluator.score(new Transformer(base), FusedLora.inference(w), rows, 4, 0));
      double merged =
          mean(
              Evaluator.score(
                  new Transformer(LoraMerge.merged(base, w)), Adapters.NONE, rows, 4, 0));
      double dense =
          mean(
              Evaluator.score(
                  new Transformer(denseReference(dir, expected)), Adapters.NONE, rows, 4, 0));
      double bare = mean(Evaluator.score(new Transformer(base), Adapters.NONE, rows, 4, 0));

      assertThat(branch).as("%s: FusedLora vs merged model", c[0]).isCloseTo(merged, within(1e-5));
      assertThat(branch)
          .as("%s: FusedLora vs dense reference", c[0])
          .isCloseTo(dense, within(1e-5));
      assertThat(Math.abs(branch - bare))
          .as("%s: the adapter changes the model", c[0])
          .isGreaterThan(1e-3);
    }
  }

  /**
   * The base with W + s_m·B·A folded into every module of {@code expected}, from the tensors in the
   * adapter's file and the scalings PEFT's rules give (not the engine's), in scalar loops.
   */
  private ModelWeights denseReference(Path dir, Map<String, double[]> expected) {
    List<LayerWeights> layers = new ArrayList<>();
    try (SafetensorsFile f = SafetensorsFile.open(dir.resolve(PeftAdapter.WEIGHTS_FILE))) {
      for (int l = 0; l < base.config().numLayers(); l++) {
        LayerWeights b = base.layers().get(l);
        Map<Projection, INDArray> w = new EnumMap<>(Projection.class);
        for (Projection p : Projection.values()) {
          INDArray weight = LoraMergeTest.WEIGHT.get(p).apply(b);
          double[] e = expected.get(p.hfModule(l));
          w.put(p, e == null ? weight : plusScaledBa(f, p.hfModule(l), weight, e[1]));
        }
        layers.add(
            new LayerWeights(
                b.inputNorm(),
                w.get(Projection.Q),
                b.bq(),
                w.get(Projection.K),
                b.bk(),
                w.get(Projection.V),
                b.bv(),
                w.get(Projection.O),
                b.bo(),
                b.postNorm(),
                w.get(Projection.GATE),
                w.get(Projection.UP),
                w.get(Projection.DOWN),
                b.bGate(),
                b.bUp(),
                b.bDown()));
      }
    }
    return new ModelWeights(base.config(), base.embed(), layers, base.finalNorm(), base.lmHead());
  }

  private static INDArray plusScaledBa(
      SafetensorsFile f, String module, INDArray weight, double s) {
    String key = PeftAdapter.PREFIX + module;
    long[] shapeA = f.info(key + ".lora_A.weight").shape();
    float[] a = f.readFloats(key + ".lora_A.weight"); // [r, in]
    float[] b = f.readFloats(key + ".lora_B.weight"); // [out, r]
    int r = (int) shapeA[0];
    int in = (int) shapeA[1];
    double[][] w = weight.toDoubleMatrix(); // [out, in]
    for (int o = 0; o < w.length; o++) {
      for (int i = 0; i < in; i++) {
        double ba = 0;
        for (int k = 0; k < r; k++) {
          ba += (double) b[o * r + k] * a[k * in + i];
        }
        w[o][i] += s * ba;
      }
    }
    return org.nd4j.linalg.factory.Nd4j.createFromArray(w).castTo(weight.dataType());
  }

  @Test
  void eachModuleBranchEqualsItsOwnDenseWeightInDouble() throws IOException {
    Path dir = writeAdapter("regex", REGEX_CONFIG, REGEX_EXPECTED);
    LoraWeights w = PeftAdapter.load(dir, base.config(), DataType.DOUBLE);
    FusedLora fused = FusedLora.inference(w);
    Random rnd = new Random(3);
    for (LoraWeights.Module m : w.modules()) {
      int in = (int) m.a().columns();
      int out = (int) m.b().rows();
      double[][] x = DenseReference.gaussian(rnd, 5, in);
      double[][] wd = DenseReference.gaussian(rnd, out, in);
      double[][] ba =
          DenseReference.matmulT(m.b().toDoubleMatrix(), m.a().transpose().toDoubleMatrix());
      double s = REGEX_EXPECTED.get(m.name())[1];
      double[][] dense = new double[out][in];
      for (int o = 0; o < out; o++) {
        for (int i = 0; i < in; i++) {
          dense[o][i] = wd[o][i] + s * ba[o][i];
        }
      }
      DenseReference.assertForwardEqualsDense(fused, m, x, wd, dense);
    }
  }

  @Test
  void saveThenLoadRoundTripsPatternsAndLayersBitIdentically() throws IOException {
    for (String[] c : new String[][] {{"layers", LAYERS_CONFIG}, {"regex", REGEX_CONFIG}}) {
      Map<String, double[]> expected = c[0].equals("layers") ? LAYERS_EXPECTED : REGEX_EXPECTED;
      LoraWeights loaded =
          PeftAdapter.load(writeAdapter(c[0], c[1], expected), base.config(), DataType.FLOAT);
      Path again = tmp.resolve(c[0] + "-again");
      Path third = tmp.resolve(c[0] + "-third");

      PeftAdapter.save(again, loaded, "random-llama");
      LoraWeights back = PeftAdapter.load(again, base.config(), DataType.FLOAT);
      PeftAdapter.save(third, back, "random-llama");

      assertThat(back.config()).as("%s: config read back", c[0]).isEqualTo(loaded.config());
      assertModules(back, expected);
      for (LoraWeights.Module m : loaded.modules()) {
        LoraWeights.Module r = back.module(m.layer(), m.proj());
        assertThat(bits(r.a())).as("%s: bits of A of %s", c[0], m.name()).isEqualTo(bits(m.a()));
        assertThat(bits(r.b())).as("%s: bits of B of %s", c[0], m.name()).isEqualTo(bits(m.b()));
      }
      for (String file : List.of(PeftAdapter.CONFIG_FILE, PeftAdapter.WEIGHTS_FILE)) {
        assertThat(Files.readAllBytes(third.resolve(file)))
            .as("%s: %s saved twice is byte-identical", c[0], file)
            .isEqualTo(Files.readAllBytes(again.resolve(file)));
      }
    }
    JsonNode layers =
        new ObjectMapper()
            .readTree(tmp.resolve("layers-again").resolve(PeftAdapter.CONFIG_FILE).toFile());
    assertThat(layers.get("layers_to_transform").toString())
        .as("layers_to_transform")
        .isEqualTo("[0,2]");
    assertThat(layers.get("layers_pattern").textValue()).as("layers_pattern").isEqualTo("layers");
    assertThat(layers.get("rank_pattern").toString())
        .as("rank_pattern")
        .isEqualTo("{\"v_proj\":2}");
    assertThat(layers.get("alpha_pattern").toString())
        .as("alpha_pattern")
        .isEqualTo("{\"model.layers.2.self_attn.q_proj\":7}");
    String regex = Files.readString(tmp.resolve("regex-again").resolve(PeftAdapter.CONFIG_FILE));
    JsonNode r = new ObjectMapper().readTree(regex);
    assertThat(r.get("target_modules").textValue())
        .as("target_modules stays a regex")
        .isEqualTo("model\\.layers\\.[13]\\.(self_attn\\.[qk]_proj|mlp\\.up_proj)");
    assertThat(r.get("exclude_modules").textValue()).isEqualTo("model\\.layers\\.3\\.mlp\\..*");
    assertThat(regex)
        .as("rank_pattern keeps its order (first match wins), not sorted")
        .contains(
            "\"rank_pattern\": {\n    \"model\\\\.layers\\\\.1\\\\.self_attn\\\\.k_proj\": 3,\n"
                + "    \"k_proj\": 2,\n");
  }

  static Stream<Arguments> badValues() {
    return Stream.of(
        bad(
            "lora_bias is true",
            n -> n.put("lora_bias", true),
            "lora_bias is true",
            "valid: false"),
        bad(
            "target_parameters names a parameter",
            n -> n.putArray("target_parameters").add("mlp.experts.down_proj"),
            "target_parameters is [\"mlp.experts.down_proj\"]",
            "valid: null or []"),
        bad(
            "alora_invocation_tokens is set",
            n -> n.putArray("alora_invocation_tokens").add(5),
            "alora_invocation_tokens",
            "valid: null"),
        bad("use_qalora is true", n -> n.put("use_qalora", true), "use_qalora", "valid: false"),
        bad("use_bdlora is set", n -> n.putObject("use_bdlora"), "use_bdlora", "valid: null"),
        bad("arrow_config is set", n -> n.putObject("arrow_config"), "arrow_config", "valid: null"),
        bad(
            "init_lora_weights is pissa",
            n -> n.put("init_lora_weights", "pissa_niter_4"),
            "init_lora_weights is \"pissa_niter_4\"",
            "path_initial_model_for_weight_conversion"),
        bad(
            "layers_to_transform is a string",
            n -> n.put("layers_to_transform", "0"),
            "layers_to_transform",
            "layer index >= 0"),
        bad(
            "layers_to_transform holds a negative index",
            n -> n.putArray("layers_to_transform").add(0).add(-1),
            "layers_to_transform holds -1",
            "layer index >= 0"),
        bad(
            "layers_to_transform 0 with layers_pattern",
            n -> n.put("layers_to_transform", 0),
            "layers_to_transform is 0",
            "valid: [0]"),
        bad(
            "layers_pattern without layers_to_transform",
            n -> n.putNull("layers_to_transform"),
            "layers_pattern",
            "set layers_to_transform"),
        bad(
            "layers_pattern is a number",
            n -> n.put("layers_pattern", 3),
            "layers_pattern is 3",
            "list of strings"),
        bad(
            "regex target_modules with layers_to_transform",
            n -> n.put("target_modules", ".*\\.q_proj"),
            "layers_to_transform is [0,2] but target_modules is the string",
            "list the module names"),
        bad(
            "regex target_modules that also matches lm_head",
            n -> clearLayers(n).put("target_modules", "lm_head|.*\\.q_proj"),
            "target_modules is the regex",
            "also matches lm_head"),
        bad(
            "regex target_modules that also matches the norms",
            n -> clearLayers(n).put("target_modules", ".*"),
            "target_modules is the regex \".*\", which also matches model",
            "q_proj"),
        bad(
            "regex target_modules that does not compile",
            n -> clearLayers(n).put("target_modules", "(q_proj"),
            "target_modules holds the regex (q_proj",
            "does not compile"),
        bad(
            "exclude_modules is a number",
            n -> n.put("exclude_modules", 3),
            "exclude_modules is 3",
            "list of strings"),
        bad(
            "exclude_modules leaves nothing",
            n -> n.putArray("exclude_modules").add("q_proj").add("v_proj").add("mlp.down_proj"),
            "exclude_modules leaves no module",
            "PEFT refuses"),
        bad(
            "rank_pattern gives rank 0",
            n -> n.putObject("rank_pattern").put("v_proj", 0),
            "rank_pattern gives v_proj the value 0",
            "integer rank >= 1"),
        bad(
            "rank_pattern gives a fractional rank",
            n -> n.putObject("rank_pattern").put("v_proj", 2.5),
            "rank_pattern",
            "integer rank >= 1"),
        bad(
            "rank_pattern key does not compile",
            n -> n.putObject("rank_pattern").put("v_proj[", 2),
            "rank_pattern holds the key v_proj[",
            "does not compile"),
        bad(
            "rank_pattern is a list",
            n -> n.putArray("rank_pattern").add(2),
            "rank_pattern is [2]",
            "expected an object"),
        bad(
            "alpha_pattern gives a string",
            n -> n.putObject("alpha_pattern").put("v_proj", "16"),
            "alpha_pattern gives v_proj the value \"16\"",
            "finite number > 0"),
        bad(
            "alpha_pattern gives alpha 0",
            n -> n.putObject("alpha_pattern").put("k_proj", 0.0),
            "alpha_pattern gives k_proj the value 0.0",
            "finite number > 0"));
  }

  private static ObjectNode clearLayers(ObjectNode n) {
    n.putNull("layers_to_transform");
    n.putNull("layers_pattern");
    return n;
  }

  private static Arguments bad(String what, Consumer<ObjectNode> edit, String key, String valid) {
    return Arguments.of(what, edit, key, valid);
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("badValues")
  void badValueIsRefusedNamingTheFileAndKey(
      String what, Consumer<ObjectNode> edit, String key, String valid) throws IOException {
    Path dir = writeAdapter("layers", LAYERS_CONFIG, LAYERS_EXPECTED);
    AdapterFiles.editConfig(dir, edit);

    assertThatThrownBy(() -> PeftAdapter.load(dir, base, DataType.FLOAT))
        .as(what)
        .isInstanceOf(IllegalArgumentException.class)
        .isNotInstanceOf(PeftAdapter.ModelMismatchException.class)
        .hasMessageContaining(dir.resolve(PeftAdapter.CONFIG_FILE).toString())
        .hasMessageContaining(key)
        .hasMessageContaining(valid)
        .satisfies(e -> assertThat(e.getMessage()).as("one line").doesNotContain("\n"));
  }

  @Test
  void rankPatternThatDisagreesWithTheTensorsIsAConfigError() throws IOException {
    Path dir = writeAdapter("layers", LAYERS_CONFIG, LAYERS_EXPECTED);
    AdapterFiles.editConfig(dir, n -> n.putObject("rank_pattern").put("v_proj", 3));

    assertThatThrownBy(() -> PeftAdapter.load(dir, base, DataType.FLOAT))
        .isInstanceOf(IllegalArgumentException.class)
        .isNotInstanceOf(PeftAdapter.ModelMismatchException.class)
        .hasMessageContaining(dir.resolve(PeftAdapter.WEIGHTS_FILE).toString())
        .hasMessageContaining("v_proj.lora_A.weight' has shape [2, 16]")
        .hasMessageContaining("r=3 (rank_pattern)")
        .hasMessageContaining("[3, 16]");
  }

  @Test
  void layersTheModelLacksAreAModelMismatch() throws IOException {
    Path dir = writeAdapter("layers", LAYERS_CONFIG, LAYERS_EXPECTED);
    ModelConfig twoLayers = LoraTestModels.smallLlama();

    assertThatThrownBy(() -> PeftAdapter.load(dir, twoLayers, DataType.FLOAT))
        .as("layer 2's tensors on a 2-layer model")
        .isInstanceOf(PeftAdapter.ModelMismatchException.class)
        .hasMessageContaining("unexpected tensor 'base_model.model.model.layers.2.");
    AdapterFiles.editConfig(dir, n -> n.putArray("layers_to_transform").add(2).add(3));
    assertThatThrownBy(() -> PeftAdapter.load(dir, twoLayers, DataType.FLOAT))
        .as("layers_to_transform beyond the model")
        .isInstanceOf(PeftAdapter.ModelMismatchException.class)
        .hasMessageContaining("layers_to_transform [2, 3] names no layer")
        .hasMessageContaining("2 layers");
  }

  @Test
  void replicasWithPerModuleRanksAggregateToTheirExactWeightedSum() throws IOException {
    LoraWeights a =
        PeftAdapter.load(
            writeAdapter("replica-a", LAYERS_CONFIG, LAYERS_EXPECTED),
            base.config(),
            DataType.FLOAT);
    LoraWeights b =
        PeftAdapter.load(
            writeAdapter("replica-b", LAYERS_CONFIG, LAYERS_EXPECTED),
            base.config(),
            DataType.FLOAT);

    LoraWeights out = ReplicaAggregation.aggregate(List.of(a, b), new double[] {0.25, 0.75}, 8);

    assertThat(out.modules().stream().map(LoraWeights.Module::name).toList())
        .as("the replicas' layers, no others")
        .isEqualTo(a.modules().stream().map(LoraWeights.Module::name).toList());
    assertThat(out.config().selection().hasPatterns()).as("one rank in the result").isFalse();
    for (LoraWeights.Module m : out.modules()) {
      INDArray want =
          ReplicaAggregation.delta(a, a.module(m.layer(), m.proj()))
              .muli(0.25)
              .addi(ReplicaAggregation.delta(b, b.module(m.layer(), m.proj())).muli(0.75));
      double err = ReplicaAggregation.delta(out, m).sub(want).amaxNumber().doubleValue();
      assertThat(err).as("|ΔW' - Σ w_r s_r B_r A_r| of %s", m.name()).isLessThan(1e-5);
    }
  }

  @Test
  void trainingConfigsPrintWithoutTheirSelection() {
    LoraConfig plain = new LoraConfig(4, 8, 0, List.of(Projection.Q), false);
    assertThat(plain.toString())
        .as("as the record printed before selections (run-plan keys hash it)")
        .isEqualTo(
            "LoraConfig[rank=4, alpha=8.0, dropout=0.0, targets=[Q], rsLora=false, method=LORA]");
  }

  @Test
  void methodsWithOneRankRefusePatterns() {
    ModuleSelection patterns =
        new ModuleSelection(
            null, null, null, null, null, List.of(new ModuleSelection.Rule("v_proj", 2)), null);
    for (LoraMethod method : List.of(LoraMethod.VERA, LoraMethod.ADALORA, LoraMethod.PISSA)) {
      assertThatThrownBy(
              () -> new LoraConfig(4, 8, 0, List.of(Projection.V), false, method, patterns))
          .as(method.key())
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining(
              "rank_pattern and alpha_pattern are not supported for method " + method.key());
    }
    for (LoraMethod method : List.of(LoraMethod.LORA, LoraMethod.LORA_FA, LoraMethod.DORA)) {
      assertThat(
              new LoraConfig(4, 8, 0, List.of(Projection.V), false, method, patterns)
                  .rank("model.layers.0.self_attn.v_proj"))
          .as("%s takes the pattern's rank", method.key())
          .isEqualTo(2);
    }
  }

  @Test
  void veraConfigWithARankPatternIsRefused() throws IOException {
    Path dir = Files.createDirectories(tmp.resolve("vera"));
    Files.writeString(
        dir.resolve(PeftAdapter.CONFIG_FILE),
        """
        {"peft_type": "VERA", "r": 4, "target_modules": ["q_proj"], "rank_pattern": {"q_proj": 2}}
        """);
    assertThatThrownBy(() -> PeftAdapter.load(dir, base, DataType.FLOAT))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("rank_pattern is {\"q_proj\":2}")
        .hasMessageContaining("valid: {} or null");
  }

  @Test
  void layerSelectionAppliesToDoraToo() throws IOException {
    Path dir =
        writeAdapter(
            "dora",
            LAYERS_CONFIG.replace("\"use_dora\": false", "\"use_dora\": true"),
            LAYERS_EXPECTED);
    Map<String, SafetensorsWriter.Tensor> t = new LinkedHashMap<>();
    try (SafetensorsFile f = SafetensorsFile.open(dir.resolve(PeftAdapter.WEIGHTS_FILE))) {
      for (String name : f.names()) {
        t.put(name, SafetensorsWriter.Tensor.f32(f.info(name).shape(), f.readFloats(name)));
        if (name.endsWith(".lora_B.weight")) {
          long out = f.info(name).shape()[0];
          float[] mag = new float[(int) out];
          java.util.Arrays.fill(mag, 1.5f);
          t.put(
              name.replace("lora_B.weight", DoraState.MAGNITUDE),
              SafetensorsWriter.Tensor.f32(new long[] {out}, mag));
        }
      }
    }
    SafetensorsWriter.write(dir.resolve(PeftAdapter.WEIGHTS_FILE), t, Map.of("format", "pt"));
    LoraWeights w = PeftAdapter.load(dir, base, DataType.FLOAT);
    assertThat(w.config().method()).isEqualTo(LoraMethod.DORA);
    assertModules(w, LAYERS_EXPECTED);
    List<TokenRow> rows = scoringRows(base.config().vocabSize());
    double branch =
        mean(Evaluator.score(new Transformer(base), FusedLora.inference(w), rows, 4, 0));
    double merged =
        mean(
            Evaluator.score(new Transformer(LoraMerge.merged(base, w)), Adapters.NONE, rows, 4, 0));
    assertThat(branch).as("DoRA branch vs merged model").isCloseTo(merged, within(1e-5));
  }
}
