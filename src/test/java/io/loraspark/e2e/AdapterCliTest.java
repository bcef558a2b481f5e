package io.loraspark.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.loraspark.train.lora.LoraConfig;
import io.loraspark.train.lora.LoraWeights;
import io.loraspark.train.lora.PeftAdapter;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.Projection;
import io.loraspark.train.safetensors.DType;
import io.loraspark.train.safetensors.SafetensorsFile;
import io.loraspark.train.safetensors.TensorInfo;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * An adapter trained by {@code train}, used unmerged by {@code score --adapter} and {@code generate
 * --adapter}, and folded in by {@code merge}: both routes give the same model (issue 3's
 * done-when), on the real stories260K.
 */
class AdapterCliTest {
  static final Path STORIES = CliScoreTest.STORIES;
  static final int STORIES_LAYERS = 5;
  static final String PROMPT = "Once upon a time";

  @TempDir static Path shared;

  static Path data;
  static Path adapter;
  static Path merged;
  static CliRunner mergeRun;

  @TempDir Path tmp;

  /** Trains a small adapter with a high learning rate so B is far from zero, then merges it. */
  @BeforeAll
  static void trainAndMerge() throws Exception {
    data = TrainCliTest.tokenizedSeeds(shared.resolve("train.jsonl"), 128);
    adapter = shared.resolve("adapter");
    CliRunner train =
        CliRunner.run(
            "train",
            "--model",
            STORIES.toString(),
            "--data",
            data.toString(),
            "--eval-data",
            data.toString(),
            "--output",
            adapter.toString(),
            "--rank",
            "4",
            "--lr",
            "3e-3",
            "--lr-ratio",
            "4",
            "--steps",
            "12",
            "--batch-size",
            "4",
            "--quiet");
    assertThat(train.exitCode()).as("train exit code, stderr: %s", train.err()).isZero();
    merged = shared.resolve("merged");
    mergeRun = merge(adapter, merged);
    assertThat(mergeRun.exitCode()).as("merge exit code, stderr: %s", mergeRun.err()).isZero();
  }

  @Test
  void mergeWritesAnF32CheckpointWithTokenizerAndReportsWhatItMerged() throws Exception {
    assertThat(mergeRun.out().lines().toList()).as("stdout is one JSON line").hasSize(1);
    JsonNode json = new ObjectMapper().readTree(mergeRun.out());
    assertThat(json.get("output").asText()).as("output").isEqualTo(merged.toString());
    assertThat(json.get("merged_modules").asInt())
        .as("5 layers x 7 targets")
        .isEqualTo(STORIES_LAYERS * 7);
    assertThat(json.get("tensors").asInt())
        .as("embed + 5 x (2 norms + 7 projections) + final norm; tied head not written")
        .isEqualTo(1 + STORIES_LAYERS * 9 + 1);
    try (SafetensorsFile f = SafetensorsFile.open(merged.resolve("model.safetensors"))) {
      for (String name : f.names()) {
        assertThat(f.info(name).dtype()).as("dtype of %s", name).isEqualTo(DType.F32);
      }
    }
    for (String name : List.of("config.json", "tokenizer.json", "tokenizer_config.json")) {
      assertThat(Files.readAllBytes(merged.resolve(name)))
          .as("%s copied from the base", name)
          .isEqualTo(Files.readAllBytes(STORIES.resolve(name)));
    }
    try (Stream<Path> siblings = Files.list(shared)) {
      assertThat(siblings.map(p -> p.getFileName().toString()))
          .as("no staging directory left next to the output")
          .noneMatch(n -> n.startsWith("."));
    }
  }

  @Test
  void scoreWithAdapterEqualsScoreOfTheMergedModel() throws Exception {
    JsonNode base = score(STORIES, null);
    JsonNode withAdapter = score(STORIES, adapter);
    JsonNode ofMerged = score(merged, null);

    double adapterLoss = withAdapter.get("loss").asDouble();
    double mergedLoss = ofMerged.get("loss").asDouble();
    double baseLoss = base.get("loss").asDouble();
    assertThat(Math.abs(adapterLoss - mergedLoss))
        .as("|adapter %.6f - merged %.6f|", adapterLoss, mergedLoss)
        .isLessThan(1e-4);
    assertThat(Math.abs(adapterLoss - baseLoss))
        .as("the adapter changes the loss (base %.6f, adapter %.6f)", baseLoss, adapterLoss)
        .isGreaterThan(1e-2);
    assertThat(withAdapter.get("tokens").asLong())
        .as("same scored tokens")
        .isEqualTo(ofMerged.get("tokens").asLong())
        .isEqualTo(base.get("tokens").asLong());
  }

  @Test
  void generateWithAdapterEqualsGenerateOfTheMergedModel() throws Exception {
    JsonNode base = generate(STORIES, null);
    JsonNode withAdapter = generate(STORIES, adapter);
    JsonNode ofMerged = generate(merged, null);

    assertThat(withAdapter.get("generated_ids").toString())
        .as("greedy ids with --adapter and from the merged model")
        .isEqualTo(ofMerged.get("generated_ids").toString());
    assertThat(withAdapter.get("text").asText()).isEqualTo(ofMerged.get("text").asText());
    assertThat(withAdapter.get("generated_ids").toString())
        .as("the adapter changes what is generated")
        .isNotEqualTo(base.get("generated_ids").toString());
  }

  @Test
  void exportedAdapterReimportsAndReexportsBitExactly() throws Exception {
    String baseName =
        new ObjectMapper()
            .readTree(adapter.resolve(PeftAdapter.CONFIG_FILE).toFile())
            .get("base_model_name_or_path")
            .asText();
    Path again = tmp.resolve("again");

    LoraWeights loaded = PeftAdapter.load(adapter, ModelConfig.load(STORIES), DataType.FLOAT);
    PeftAdapter.save(again, loaded, baseName);

    Path first = adapter.resolve(PeftAdapter.WEIGHTS_FILE);
    Path second = again.resolve(PeftAdapter.WEIGHTS_FILE);
    try (SafetensorsFile a = SafetensorsFile.open(first);
        SafetensorsFile b = SafetensorsFile.open(second)) {
      assertThat(b.names()).as("tensor names").containsExactlyElementsOf(a.names());
      assertThat(a.names()).as("5 layers x 7 targets x (A, B)").hasSize(STORIES_LAYERS * 14);
      byte[] bytesA = Files.readAllBytes(first);
      byte[] bytesB = Files.readAllBytes(second);
      for (String name : a.names()) {
        assertThat(tensorBytes(bytesB, b.info(name)))
            .as("bytes of %s", name)
            .isEqualTo(tensorBytes(bytesA, a.info(name)));
      }
      assertThat(bytesB).as("whole adapter_model.safetensors").isEqualTo(bytesA);
    }
    assertThat(Files.readString(again.resolve(PeftAdapter.CONFIG_FILE)))
        .as("adapter_config.json")
        .isEqualTo(Files.readString(adapter.resolve(PeftAdapter.CONFIG_FILE)));
    boolean anyNonZeroB =
        loaded.modules().stream().anyMatch(m -> m.b().amaxNumber().doubleValue() > 0);
    assertThat(anyNonZeroB).as("training moved B off zero").isTrue();
  }

  @Test
  void missingAdapterDirectoryIsAnInputError() {
    Path missing = tmp.resolve("no-such-adapter");
    for (CliRunner r :
        List.of(
            CliRunner.run(
                "score",
                "--model",
                STORIES.toString(),
                "--adapter",
                missing.toString(),
                "--data",
                data.toString()),
            CliRunner.run(
                "generate",
                "--model",
                STORIES.toString(),
                "--adapter",
                missing.toString(),
                "--prompt",
                PROMPT),
            merge(missing, tmp.resolve("out")))) {
      assertOneLineInputError(r, missing.toString());
    }
    assertThat(tmp.resolve("out")).as("nothing written by a failed merge").doesNotExist();
  }

  @Test
  void adapterForAModelOfAnotherWidthIsAnInputErrorNamingFileAndTensor() throws Exception {
    Path other = otherModelAdapter(32, STORIES_LAYERS);
    String tensor = "base_model.model.model.layers.0.";
    for (CliRunner r : useEverywhere(other)) {
      assertOneLineInputError(r, other.resolve(PeftAdapter.WEIGHTS_FILE).toString());
      assertThat(r.errLines().get(0))
          .as("names the tensor, its shape and the adapter's base model")
          .contains(tensor)
          .contains("has shape [4, 32]")
          .contains("base_model_name_or_path");
    }
  }

  @Test
  void adapterForAModelWithFewerLayersIsAnInputErrorNamingTheMissingTensor() throws Exception {
    Path other = otherModelAdapter(64, 2);
    for (CliRunner r : useEverywhere(other)) {
      assertOneLineInputError(r, other.resolve(PeftAdapter.WEIGHTS_FILE).toString());
      assertThat(r.errLines().get(0))
          .as("the first layer the adapter lacks")
          .contains("'base_model.model.model.layers.2.")
          .contains("is missing");
    }
  }

  @Test
  void unknownTargetModuleIsAnInputErrorNamingTheKey() throws Exception {
    Path bad = tmp.resolve("bad-target");
    Files.createDirectories(bad);
    Files.copy(adapter.resolve(PeftAdapter.WEIGHTS_FILE), bad.resolve(PeftAdapter.WEIGHTS_FILE));
    String config = Files.readString(adapter.resolve(PeftAdapter.CONFIG_FILE));
    Files.writeString(
        bad.resolve(PeftAdapter.CONFIG_FILE), config.replace("\"q_proj\"", "\"qkv_proj\""));
    for (CliRunner r : useEverywhere(bad)) {
      assertOneLineInputError(r, bad.resolve(PeftAdapter.CONFIG_FILE).toString());
      assertThat(r.errLines().get(0)).contains("target_modules").contains("\"qkv_proj\"");
    }
  }

  @Test
  void mergeRefusesANonEmptyOutputWithoutForceAndReplacesItWithForce() throws Exception {
    Path out = Files.createDirectories(tmp.resolve("out"));
    Files.writeString(out.resolve("keep.txt"), "precious");

    CliRunner refused = merge(adapter, out);
    assertOneLineInputError(refused, out.toString());
    assertThat(refused.errLines().get(0)).contains("--force");
    assertThat(Files.readString(out.resolve("keep.txt"))).as("untouched").isEqualTo("precious");

    CliRunner forced = merge(adapter, out, "--force");
    assertThat(forced.exitCode()).as("exit code, stderr: %s", forced.err()).isZero();
    assertThat(out.resolve("keep.txt")).as("old content replaced").doesNotExist();
    assertThat(Files.readAllBytes(out.resolve("model.safetensors")))
        .as("same merge as before")
        .isEqualTo(Files.readAllBytes(merged.resolve("model.safetensors")));
  }

  @Test
  void mergeIntoAnEmptyExistingDirectoryNeedsNoForce() throws Exception {
    Path out = Files.createDirectories(tmp.resolve("empty"));
    CliRunner r = merge(adapter, out);
    assertThat(r.exitCode()).as("exit code, stderr: %s", r.err()).isZero();
    assertThat(out.resolve("model.safetensors")).exists();
  }

  @Test
  void mergeOntoTheBaseModelOrTheAdapterOrTheirParentIsRefusedEvenWithForce() throws Exception {
    Path base = Files.createDirectories(tmp.resolve("base"));
    for (String name : List.of("config.json", "model.safetensors", "tokenizer.json")) {
      Files.copy(STORIES.resolve(name), base.resolve(name));
    }
    byte[] weights = Files.readAllBytes(base.resolve("model.safetensors"));

    CliRunner onBase =
        CliRunner.run(
            "merge",
            "--model",
            base.toString(),
            "--adapter",
            adapter.toString(),
            "--output",
            base.toString(),
            "--force");
    assertOneLineInputError(onBase, base.toString());
    assertThat(Files.readAllBytes(base.resolve("model.safetensors")))
        .as("base weights untouched")
        .isEqualTo(weights);

    CliRunner onAdapter = merge(adapter, adapter, "--force");
    assertOneLineInputError(onAdapter, adapter.toString());
    assertThat(adapter.resolve(PeftAdapter.WEIGHTS_FILE)).as("adapter untouched").exists();

    Path parent = Files.createDirectories(tmp.resolve("parent"));
    Path copy = Files.createDirectories(parent.resolve("adapter"));
    for (String name : List.of(PeftAdapter.CONFIG_FILE, PeftAdapter.WEIGHTS_FILE)) {
      Files.copy(adapter.resolve(name), copy.resolve(name));
    }
    CliRunner onParent = merge(copy, parent, "--force");
    assertOneLineInputError(onParent, copy.toString());
    assertThat(copy.resolve(PeftAdapter.WEIGHTS_FILE))
        .as("an output that holds the adapter is not replaced")
        .exists();
  }

  /** Runs score, generate and merge with {@code adapterDir}. */
  private List<CliRunner> useEverywhere(Path adapterDir) {
    return List.of(
        CliRunner.run(
            "score",
            "--model",
            STORIES.toString(),
            "--adapter",
            adapterDir.toString(),
            "--data",
            data.toString()),
        CliRunner.run(
            "generate",
            "--model",
            STORIES.toString(),
            "--adapter",
            adapterDir.toString(),
            "--prompt",
            PROMPT),
        merge(adapterDir, tmp.resolve("merged-" + adapterDir.getFileName())));
  }

  /**
   * A valid PEFT adapter (all seven targets, rank 4) for a Llama shaped like stories260K but with
   * the given width and layer count.
   */
  private Path otherModelAdapter(int hidden, int layers) throws IOException {
    Path modelDir = Files.createDirectories(tmp.resolve("model-" + hidden + "x" + layers));
    Files.writeString(
        modelDir.resolve("config.json"),
        """
        {"architectures": ["LlamaForCausalLM"], "hidden_size": %d, "intermediate_size": 172,
         "num_attention_heads": %d, "num_key_value_heads": 4, "num_hidden_layers": %d,
         "head_dim": 8, "vocab_size": 512, "max_position_embeddings": 512,
         "tie_word_embeddings": true}
        """
            .formatted(hidden, hidden / 8, layers));
    ModelConfig config = ModelConfig.load(modelDir);
    LoraConfig lora = new LoraConfig(4, 8, 0, List.of(Projection.values()), false);
    Path dir = tmp.resolve("adapter-" + hidden + "x" + layers);
    PeftAdapter.save(dir, LoraWeights.init(config, lora, 1, DataType.FLOAT), modelDir.toString());
    return dir;
  }

  private static void assertOneLineInputError(CliRunner r, String named) {
    assertThat(r.exitCode()).as("exit code, stderr: %s", r.err()).isEqualTo(2);
    assertThat(r.errLines()).as("exactly one stderr line").hasSize(1);
    assertThat(r.errLines().get(0)).as("the line names %s", named).contains(named);
    assertThat(r.out()).as("nothing on stdout").isEmpty();
  }

  private static CliRunner merge(Path adapterDir, Path out, String... extra) {
    List<String> args =
        new java.util.ArrayList<>(
            List.of(
                "merge",
                "--model",
                STORIES.toString(),
                "--adapter",
                adapterDir.toString(),
                "--output",
                out.toString()));
    args.addAll(Arrays.asList(extra));
    return CliRunner.run(args.toArray(String[]::new));
  }

  private static JsonNode score(Path model, Path adapterDir) throws Exception {
    List<String> args =
        new java.util.ArrayList<>(
            List.of("score", "--model", model.toString(), "--data", data.toString()));
    if (adapterDir != null) {
      args.addAll(List.of("--adapter", adapterDir.toString()));
    }
    CliRunner r = CliRunner.run(args.toArray(String[]::new));
    assertThat(r.exitCode()).as("score %s, stderr: %s", args, r.err()).isZero();
    return new ObjectMapper().readTree(r.out());
  }

  private static JsonNode generate(Path model, Path adapterDir) throws Exception {
    List<String> args =
        new java.util.ArrayList<>(
            List.of(
                "generate",
                "--model",
                model.toString(),
                "--prompt",
                PROMPT,
                "--max-new-tokens",
                "40",
                "--json"));
    if (adapterDir != null) {
      args.addAll(List.of("--adapter", adapterDir.toString()));
    }
    CliRunner r = CliRunner.run(args.toArray(String[]::new));
    assertThat(r.exitCode()).as("generate %s, stderr: %s", args, r.err()).isZero();
    return new ObjectMapper().readTree(r.out());
  }

  /** The raw little-endian bytes of one tensor in a safetensors file's bytes. */
  private static byte[] tensorBytes(byte[] file, TensorInfo info) {
    long headerLen = ByteBuffer.wrap(file, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
    int start = Math.toIntExact(8 + headerLen + info.begin());
    int end = Math.toIntExact(8 + headerLen + info.end());
    return Arrays.copyOfRange(file, start, end);
  }
}
