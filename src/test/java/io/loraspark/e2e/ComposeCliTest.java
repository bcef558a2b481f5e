package io.loraspark.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.pipeline.testing.RandomAdapters;
import io.loraspark.train.decode.AdapterMix;
import io.loraspark.train.decode.DecodeAdapter;
import io.loraspark.train.decode.DecodeEngine;
import io.loraspark.train.decode.KvCache;
import io.loraspark.train.decode.StepRows;
import io.loraspark.train.io.AtomicFiles;
import io.loraspark.train.lora.AdapterComposition;
import io.loraspark.train.lora.DeltaLoraParams;
import io.loraspark.train.lora.LoraConfig;
import io.loraspark.train.lora.LoraForm;
import io.loraspark.train.lora.LoraMethod;
import io.loraspark.train.lora.LoraWeights;
import io.loraspark.train.lora.PeftAdapter;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Projection;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * {@code compose} on the real stories260K: {@code cat} scores like the weighted sum of its inputs
 * applied live by the decode engine (within 1e-4 of the largest logit), {@code svd} at full rank
 * like {@code cat}, {@code svd} below it reports the relative Frobenius error of a plain-Java dense
 * computation; the output is a PEFT LoRA directory with one r and no rank_pattern, plus provenance;
 * non-additive or ill-fitting inputs exit 2 with one line.
 */
class ComposeCliTest {
  static final Path STORIES = CliScoreTest.STORIES;
  static final double TOLERANCE = 1e-4;
  static final ObjectMapper JSON = new ObjectMapper();

  @TempDir static Path shared;
  @TempDir Path tmp;

  static ModelWeights base;
  static Path a; // lora r4, names stories260K as its base
  static Path b; // lora-fa r2
  static Path c; // lora r3
  static final String[] WEIGHTS = {"0.7", "-0.5", "1.2"};

  @BeforeAll
  static void adapters() {
    base = CheckpointLoader.load(STORIES);
    a =
        RandomAdapters.save(
            base, shared.resolve("a"), LoraMethod.LORA, 4, 1, 1, 0.05, STORIES.toString());
    b = RandomAdapters.save(base, shared.resolve("b"), LoraMethod.LORA_FA, 2, 2, 2, 0.05, null);
    c = RandomAdapters.save(base, shared.resolve("c"), LoraMethod.LORA, 3, 3, 3, 0.05, null);
  }

  /** compose with a:0.7, b:-0.5, c:1.2 and {@code extra} options; asserts exit 0. */
  static CliRunner compose(Path out, String... extra) {
    List<String> args = new ArrayList<>(List.of("--model", STORIES.toString()));
    Path[] dirs = {a, b, c};
    for (int i = 0; i < dirs.length; i++) {
      args.addAll(List.of("--adapter", dirs[i] + ":" + WEIGHTS[i]));
    }
    args.addAll(List.of("--output", out.toString()));
    args.addAll(List.of(extra));
    return ok(args.toArray(String[]::new));
  }

  /** {@code compose args}; asserts exit 0 and one line on stdout. */
  static CliRunner ok(String... args) {
    List<String> all = new ArrayList<>(List.of("compose"));
    all.addAll(List.of(args));
    CliRunner r = CliRunner.run(all.toArray(String[]::new));
    assertThat(r.exitCode()).as("%s: exit code, stderr: %s", all, r.err()).isZero();
    assertThat(r.out().lines().toList()).as("stdout is one JSON line").hasSize(1);
    return r;
  }

  static JsonNode json(CliRunner r) throws Exception {
    return JSON.readTree(r.out());
  }

  @Test
  void catScoresLikeTheWeightedSumAppliedLive() throws Exception {
    Path out = tmp.resolve("cat");
    JsonNode json = json(compose(out, "--method", "cat"));
    assertThat(json.get("rank").asInt()).as("r = 4 + 2 + 3").isEqualTo(9);
    assertThat(json.get("weighted_delta_sum").asBoolean()).as("cat is the ΔW sum").isTrue();

    int[] ids = tokens(40);
    float[] live = logits(ids, mix(new Path[] {a, b, c}, new float[] {0.7f, -0.5f, 1.2f}));
    float[] composed = logits(ids, mix(new Path[] {out}, new float[] {1f}));
    float[] bare = logits(ids, AdapterMix.NONE);
    assertThat(relativeError(bare, live)).as("the mix changes the logits").isGreaterThan(1e-3);
    assertThat(relativeError(composed, live))
        .as("composed adapter vs Σ w_i ΔW_i applied live: max |Δlogit| / max |logit|")
        .isLessThanOrEqualTo(TOLERANCE);
  }

  @Test
  void svdAtFullRankScoresLikeCat() throws Exception {
    Path cat = tmp.resolve("cat");
    Path svd = tmp.resolve("svd");
    compose(cat, "--method", "cat");
    JsonNode json = json(compose(svd, "--method", "svd", "--rank", "9"));
    assertThat(json.get("max_relative_error").asDouble()).as("nothing cut").isLessThan(1e-6);
    int[] ids = tokens(40);
    assertThat(
            relativeError(
                logits(ids, mix(new Path[] {svd}, new float[] {1f})),
                logits(ids, mix(new Path[] {cat}, new float[] {1f}))))
        .as("svd at rank 9 vs cat")
        .isLessThanOrEqualTo(TOLERANCE);
  }

  /**
   * The per-module errors on stdout and stderr are the library's (whose agreement with a plain-Java
   * dense computation AdapterCompositionTest asserts) for the same inputs read from disk.
   */
  @Test
  void svdBelowFullRankReportsEachModulesRelativeFrobeniusError() throws Exception {
    CliRunner r = compose(tmp.resolve("svd3"), "--method", "svd", "--rank", "3");
    JsonNode errors = json(r).get("relative_error");
    assertThat(errors.size()).as("one error per module: 5 layers x 7").isEqualTo(35);
    assertThat(r.errLines()).as("one stderr line per module").hasSize(35);
    List<LoraForm> forms = new ArrayList<>();
    for (Path p : new Path[] {a, b, c}) {
      forms.add(LoraForm.of(p.toString(), PeftAdapter.load(p, base.config(), DataType.FLOAT)));
    }
    Map<String, Double> want =
        AdapterComposition.compose(
                forms,
                new double[] {0.7, -0.5, 1.2},
                new AdapterComposition.Options(AdapterComposition.Method.SVD, 3, Double.NaN, 0))
            .relativeErrors();
    for (Map.Entry<String, Double> e : want.entrySet()) {
      assertThat(errors.get(e.getKey()).asDouble())
          .as("%s: printed vs computed", e.getKey())
          .isCloseTo(e.getValue(), within(1e-9));
      assertThat(e.getValue())
          .as("%s: rank 9 cut to 3 loses something", e.getKey())
          .isGreaterThan(0.01);
      assertThat(r.err())
          .as("stderr names %s", e.getKey())
          .contains(e.getKey() + ": relative error");
    }
  }

  @Test
  void writesOnePeftLoraRankWithoutRankPatternAndTheProvenance() throws Exception {
    Path out = tmp.resolve("out");
    // no --model: a names stories260K as its base_model_name_or_path
    ok(
        "--adapter",
        a + ":0.7",
        "--adapter",
        c.toString(),
        "--method",
        "cat",
        "--output",
        out.toString());
    JsonNode config = JSON.readTree(out.resolve(PeftAdapter.CONFIG_FILE).toFile());
    assertThat(config.get("peft_type").asText()).isEqualTo("LORA");
    assertThat(config.get("r").asInt()).as("r = 4 + 3").isEqualTo(7);
    assertThat(config.get("lora_alpha").asDouble()).as("lora_alpha = r").isEqualTo(7);
    assertThat(config.get("use_rslora").asBoolean()).isFalse();
    JsonNode pattern = config.get("rank_pattern");
    assertThat(pattern == null || pattern.isNull() || pattern.isEmpty())
        .as("no rank_pattern: %s", pattern)
        .isTrue();
    LoraConfig read = PeftAdapter.readConfig(out);
    assertThat(read.selection().hasPatterns()).as("read back without patterns").isFalse();
    assertThat(read.scaling()).as("scaling").isEqualTo(1.0);
    assertThat(PeftAdapter.load(out, base.config(), DataType.FLOAT).modules()).hasSize(35);

    JsonNode prov = JSON.readTree(out.resolve("compose.json").toFile());
    assertThat(prov.get("method").asText()).isEqualTo("cat");
    assertThat(prov.get("base_model").asText())
        .isEqualTo(STORIES.toAbsolutePath().normalize().toString());
    JsonNode first = prov.get("inputs").get(0);
    assertThat(first.get("path").asText()).isEqualTo(a.toAbsolutePath().normalize().toString());
    assertThat(first.get("weight").asDouble()).isEqualTo(0.7, within(1e-7));
    assertThat(first.get("method").asText()).isEqualTo("lora");
    assertThat(first.get("adapter_model.safetensors_sha256").asText())
        .as("content hash of the input")
        .isEqualTo(AtomicFiles.sha256(a.resolve(PeftAdapter.WEIGHTS_FILE)));
    assertThat(prov.get("inputs").get(1).get("weight").asDouble())
        .as("default weight")
        .isEqualTo(1.0);
  }

  @Test
  void dareTiesRecordsDensityAndSeedAndIsNotTheDeltaSum() throws Exception {
    Path out = tmp.resolve("dare");
    Path a2 = RandomAdapters.save(base, tmp.resolve("a2"), LoraMethod.LORA, 4, 9, 9, 0.05, null);
    CliRunner r =
        ok(
            "--model",
            STORIES.toString(),
            "--adapter",
            a + ":0.6",
            "--adapter",
            a2 + ":0.4",
            "--method",
            "dare_ties",
            "--density",
            "0.5",
            "--seed",
            "3",
            "--output",
            out.toString());
    assertThat(JSON.readTree(r.out()).get("weighted_delta_sum").asBoolean()).isFalse();
    JsonNode prov = JSON.readTree(out.resolve("compose.json").toFile());
    assertThat(prov.get("density").asDouble()).isEqualTo(0.5);
    assertThat(prov.get("seed").asLong()).isEqualTo(3);
    assertThat(PeftAdapter.readConfig(out).rank()).as("PEFT keeps the common rank").isEqualTo(4);
  }

  @Test
  void refusesNonAdditiveAndIllFittingInputsWithExit2AndOneLine() throws Exception {
    Path dora =
        RandomAdapters.save(base, tmp.resolve("dora"), LoraMethod.DORA, 2, 4, 4, 0.05, null);
    expectInvalid(
        "is dora", "--adapter", a.toString(), "--adapter", dora.toString(), "--method", "cat");
    Path delta = tmp.resolve("delta"); // as an earlier version saved it, with a dense ΔW
    PeftAdapter.save(
        delta,
        LoraWeights.init(
            base,
            new LoraConfig(2, 4, 0, List.of(Projection.values()), false, LoraMethod.DELTA_LORA)
                .withDeltaLora(DeltaLoraParams.DENSE),
            5,
            DataType.FLOAT),
        null);
    expectInvalid(
        "is delta-lora with a dense ΔW", "--adapter", delta.toString(), "--method", "cat");

    Path pissa = tmp.resolve("pissa"); // PEFT's unconverted PiSSA: its A, B are relative to W_res
    copy(a, pissa);
    ObjectNode cfg = (ObjectNode) JSON.readTree(pissa.resolve(PeftAdapter.CONFIG_FILE).toFile());
    cfg.put("init_lora_weights", "pissa");
    Files.writeString(pissa.resolve(PeftAdapter.CONFIG_FILE), cfg.toString());
    expectInvalid("init_lora_weights", "--adapter", pissa.toString(), "--method", "cat");

    ObjectNode narrow = (ObjectNode) JSON.readTree(STORIES.resolve("config.json").toFile());
    narrow.put("intermediate_size", 160);
    ModelConfig other = ModelConfig.fromJson(narrow);
    LoraWeights w =
        LoraWeights.init(
            other, new LoraConfig(2, 4, 0, List.of(Projection.values()), false), 1, DataType.FLOAT);
    Path otherBase = tmp.resolve("other-base");
    PeftAdapter.save(otherBase, w, null);
    expectInvalid(
        "has shape",
        "--adapter",
        a.toString(),
        "--adapter",
        otherBase.toString(),
        "--method",
        "cat");

    expectInvalid(
        "is not a directory", "--adapter", tmp.resolve("missing").toString(), "--method", "cat");
    expectInvalid(
        "linear needs one rank",
        "--adapter",
        a.toString(),
        "--adapter",
        b.toString(),
        "--method",
        "linear");
    expectInvalid(
        "--rank applies only to svd", "--adapter", a.toString(), "--method", "cat", "--rank", "2");
    expectInvalid(
        "--seed applies only to dare_linear and dare_ties",
        "--adapter",
        a.toString(),
        "--method",
        "ties",
        "--density",
        "0.5",
        "--seed",
        "3");
    expectInvalid("unknown composition method", "--adapter", a.toString(), "--method", "average");
    Path full = Files.createDirectories(tmp.resolve("full"));
    Files.writeString(full.resolve("x"), "x");
    expectInvalid(
        "exists and is not empty",
        "--adapter",
        a.toString(),
        "--method",
        "cat",
        "--output",
        full.toString());
    Path model = Files.createDirectories(tmp.resolve("model-copy")); // the real one must survive
    try (var files = Files.list(STORIES)) {
      for (Path f : files.filter(Files::isRegularFile).toList()) {
        Files.copy(f, model.resolve(f.getFileName()));
      }
    }
    CliRunner overModel =
        CliRunner.run(
            "compose",
            "--model",
            model.toString(),
            "--adapter",
            a.toString(),
            "--method",
            "cat",
            "--output",
            model.toString(),
            "--force");
    assertThat(overModel.exitCode()).as("output = model: %s", overModel.err()).isEqualTo(2);
    assertThat(overModel.err()).contains("is or contains the input");
    assertThat(model.resolve("config.json")).exists();
    CliRunner noModel =
        CliRunner.run(
            "compose",
            "--adapter",
            b.toString(),
            "--method",
            "cat",
            "--output",
            tmp.resolve("o").toString());
    assertThat(noModel.exitCode())
        .as("no --model, b names no base: %s", noModel.err())
        .isEqualTo(2);
    assertThat(noModel.err()).contains("--model is required");
  }

  private void expectInvalid(String message, String... args) {
    List<String> all = new ArrayList<>(List.of("compose", "--model", STORIES.toString()));
    all.addAll(List.of(args));
    if (!all.contains("--output")) {
      all.addAll(List.of("--output", tmp.resolve("refused").toString()));
    }
    CliRunner r = CliRunner.run(all.toArray(String[]::new));
    assertThat(r.exitCode()).as("%s: exit code, stderr: %s", all, r.err()).isEqualTo(2);
    assertThat(r.errLines()).as("%s: one line", all).hasSize(1);
    assertThat(r.err()).as("%s", all).contains(message);
    assertThat(r.out()).as("nothing on stdout").isEmpty();
    assertThat(Files.exists(tmp.resolve("refused"))).as("nothing written").isFalse();
  }

  // ---- helpers ----

  private static void copy(Path from, Path to) throws Exception {
    Files.createDirectories(to);
    for (String f : new String[] {PeftAdapter.CONFIG_FILE, PeftAdapter.WEIGHTS_FILE}) {
      Files.copy(from.resolve(f), to.resolve(f));
    }
  }

  private static AdapterMix mix(Path[] dirs, float[] weights) {
    List<DecodeAdapter> adapters = new ArrayList<>();
    for (Path d : dirs) {
      adapters.add(
          DecodeAdapter.of(d.getFileName().toString(), PeftAdapter.load(d, base, DataType.FLOAT)));
    }
    return new AdapterMix(adapters, weights);
  }

  /** Every position's logits [T·V] of {@code ids} in one engine step. */
  private static float[] logits(int[] ids, AdapterMix mix) {
    DecodeEngine engine = new DecodeEngine(base);
    KvCache cache = new KvCache(base.config(), ids.length);
    StepRows rows = new StepRows();
    for (int p = 0; p < ids.length; p++) {
      rows.add(ids[p], p, cache, mix, true);
    }
    engine.step(rows);
    return rows.logits().clone();
  }

  private static int[] tokens(int n) {
    Random rnd = new Random(5);
    int[] ids = new int[n];
    ids[0] = 1;
    for (int i = 1; i < n; i++) {
      ids[i] = 3 + rnd.nextInt(base.config().vocabSize() - 3);
    }
    return ids;
  }

  /** max |got − want| / max |want|. */
  private static double relativeError(float[] got, float[] want) {
    double diff = 0;
    double scale = 0;
    for (int i = 0; i < want.length; i++) {
      diff = Math.max(diff, Math.abs(got[i] - want[i]));
      scale = Math.max(scale, Math.abs(want[i]));
    }
    return diff / scale;
  }
}
