package io.loraspark.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The score and generate contracts of DESIGN.md, through the CLI, on the real stories260K. */
class CliScoreTest {
  static final Path ROOT = Path.of("..").toAbsolutePath().normalize();
  static final Path STORIES = ROOT.resolve("models/stories260K");
  static final Path REF = ROOT.resolve("fixtures/reference");

  @TempDir Path tmp;

  @Test
  void scoreReproducesPyTorchLoss() throws Exception {
    CliRunner r =
        CliRunner.run(
            "score",
            "--model",
            STORIES.toString(),
            "--data",
            REF.resolve("stories260K_input_ids.jsonl").toString());
    assertThat(r.exitCode()).as("exit code, stderr: %s", r.err()).isZero();
    assertThat(r.out().lines().toList()).as("stdout is one JSON line").hasSize(1);
    JsonNode json = new ObjectMapper().readTree(r.out());
    assertThat(json.get("loss").asDouble()).as("loss").isCloseTo(0.849495, within(1e-4));
    assertThat(json.get("tokens").asLong()).as("scored tokens").isEqualTo(205);
  }

  @Test
  void scoreTokenizesTextRowsLikeTheReferenceIds() throws Exception {
    JsonNode ids = new ObjectMapper().readTree(REF.resolve("stories260K_input_ids.json").toFile());
    Path data = tmp.resolve("text.jsonl");
    Files.writeString(
        data, new ObjectMapper().createObjectNode().put("text", ids.get("text").asText()) + "\n");
    CliRunner r = CliRunner.run("score", "--model", STORIES.toString(), "--data", data.toString());
    assertThat(r.exitCode()).as("exit code, stderr: %s", r.err()).isZero();
    JsonNode json = new ObjectMapper().readTree(r.out());
    assertThat(json.get("loss").asDouble()).as("loss").isCloseTo(0.849495, within(1e-4));
  }

  @Test
  void labelsMaskWhatIsScored() throws Exception {
    Path data = tmp.resolve("masked.jsonl");
    Files.writeString(
        data,
        "{\"input_ids\": [1, 403, 407, 261, 378], \"labels\": [-100, -100, -100, 261, 378]}\n");
    CliRunner r = CliRunner.run("score", "--model", STORIES.toString(), "--data", data.toString());
    assertThat(r.exitCode()).as("exit code, stderr: %s", r.err()).isZero();
    assertThat(new ObjectMapper().readTree(r.out()).get("tokens").asLong())
        .as("only labels 3 and 4 are scored")
        .isEqualTo(2);
  }

  @Test
  void generateReproducesLlama2cGreedyIds() throws Exception {
    JsonNode ref = new ObjectMapper().readTree(REF.resolve("llama2c_greedy_vectors.json").toFile());
    CliRunner r =
        CliRunner.run(
            "generate",
            "--model",
            STORIES.toString(),
            "--prompt",
            ref.get("prompt").asText(),
            "--max-new-tokens",
            "100",
            "--json");
    assertThat(r.exitCode()).as("exit code, stderr: %s", r.err()).isZero();
    JsonNode out = new ObjectMapper().readTree(r.out());
    assertThat(out.get("prompt_ids").toString()).isEqualTo(ref.get("prompt_ids").toString());
    JsonNode expected = ref.get("generated_ids");
    JsonNode got = out.get("generated_ids");
    assertThat(got.size()).as("generated tokens").isEqualTo(100);
    for (int i = 0; i < 100; i++) {
      assertThat(got.get(i).asInt()).as("greedy id %d", i).isEqualTo(expected.get(i).asInt());
    }
    assertThat(out.get("text").asText()).startsWith("Once upon a time, there was a little girl");
  }

  @Test
  void truncatedSafetensorsIsAnInputError() throws Exception {
    Path model = copyModel("truncated");
    Path st = model.resolve("model.safetensors");
    byte[] bytes = Files.readAllBytes(st);
    Files.write(st, java.util.Arrays.copyOf(bytes, bytes.length / 2));
    assertInputError(scoreWith(model), "model.safetensors");
  }

  @Test
  void safetensorsHeaderLargerThanFileIsAnInputError() throws Exception {
    Path model = copyModel("header");
    Path st = model.resolve("model.safetensors");
    byte[] bytes = Files.readAllBytes(st);
    ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putLong(0, 1L << 40);
    Files.write(st, bytes);
    assertInputError(scoreWith(model), "model.safetensors");
  }

  @Test
  void tensorShapeThatContradictsConfigIsAnInputError() throws Exception {
    Path model = copyModel("shape");
    Path cfg = model.resolve("config.json");
    Files.writeString(
        cfg,
        Files.readString(cfg).replace("\"intermediate_size\": 172", "\"intermediate_size\": 128"));
    assertInputError(scoreWith(model), "mlp.gate_proj.weight");
  }

  @Test
  void unsupportedArchitectureIsAnInputError() throws Exception {
    Path model = copyModel("arch");
    Path cfg = model.resolve("config.json");
    Files.writeString(cfg, Files.readString(cfg).replace("LlamaForCausalLM", "GPT2LMHeadModel"));
    CliRunner r = scoreWith(model);
    assertInputError(r, "config.json");
    assertThat(r.err()).as("names the supported list").contains("Qwen2ForCausalLM");
  }

  @Test
  void malformedConfigJsonIsAnInputError() throws Exception {
    Path model = copyModel("json");
    Files.writeString(model.resolve("config.json"), "{\"hidden_size\": 64,}");
    assertInputError(scoreWith(model), "config.json");
  }

  @Test
  void tokenIdOutsideVocabularyIsAnInputError() throws Exception {
    Path data = tmp.resolve("oov.jsonl");
    Files.writeString(data, "{\"input_ids\": [1, 2, 3]}\n{\"input_ids\": [1, 600]}\n");
    CliRunner r = CliRunner.run("score", "--model", STORIES.toString(), "--data", data.toString());
    assertInputError(r, "600");
    assertThat(r.err()).contains("line 2", "[0, 512)");
  }

  @Test
  void malformedDataLineIsAnInputErrorNamingTheLine() throws Exception {
    Path data = tmp.resolve("bad.jsonl");
    Files.writeString(data, "{\"input_ids\": [1, 2, 3]}\n{\"input_ids\": [1, 2,]}\n");
    assertInputError(
        CliRunner.run("score", "--model", STORIES.toString(), "--data", data.toString()), "line 2");
  }

  @Test
  void usageErrorsExitWithTwo() {
    assertInputError(CliRunner.run("score", "--model"), "--model");
    assertInputError(CliRunner.run("frobnicate"), "frobnicate");
    assertInputError(
        CliRunner.run("score", "--model", tmp.resolve("nope").toString(), "--data", "x.jsonl"),
        "nope");
  }

  private CliRunner scoreWith(Path model) {
    return CliRunner.run(
        "score",
        "--model",
        model.toString(),
        "--data",
        REF.resolve("stories260K_input_ids.jsonl").toString());
  }

  private Path copyModel(String name) throws Exception {
    Path dir = Files.createDirectories(tmp.resolve(name));
    try (var files = Files.list(STORIES)) {
      for (Path f : files.toList()) {
        Files.copy(f, dir.resolve(f.getFileName()), StandardCopyOption.REPLACE_EXISTING);
      }
    }
    return dir;
  }

  static void assertInputError(CliRunner r, String mentioned) {
    assertThat(r.exitCode()).as("exit code for invalid input, stderr: %s", r.err()).isEqualTo(2);
    assertThat(r.errLines()).as("exactly one stderr line").hasSize(1);
    assertThat(r.errLines().get(0)).as("the error names what is wrong").contains(mentioned);
    assertThat(r.out()).as("nothing on stdout").isEmpty();
  }
}
