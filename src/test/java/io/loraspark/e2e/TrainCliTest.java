package io.loraspark.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.prep.tokenize.TextTokenizer;
import io.loraspark.train.lora.LoraWeights;
import io.loraspark.train.lora.PeftAdapter;
import io.loraspark.train.model.ModelConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

/** {@code train} on the real stories260K with the bundled self-instruct data (Apache-2.0). */
class TrainCliTest {
  static final Path ROOT = CliScoreTest.ROOT;
  static final String ALPACA =
      "Below is an instruction that describes a task%s. Write a response that appropriately"
          + " completes the request.\n\n### Instruction:\n%s\n\n%s### Response:\n";

  @TempDir Path tmp;

  @Test
  void trainingFitsTheInstructionDataWellBelowTheBaseModel() throws Exception {
    Path data = tokenizedSeeds(tmp.resolve("train.jsonl"), 128);
    Path out = tmp.resolve("adapter");
    CliRunner r =
        CliRunner.run(
            "train",
            "--model",
            CliScoreTest.STORIES.toString(),
            "--data",
            data.toString(),
            "--output",
            out.toString(),
            "--rank",
            "8",
            "--eval-data",
            data.toString(),
            "--lr",
            "1e-3",
            "--lr-ratio",
            "4",
            "--steps",
            "40",
            "--eval-every",
            "10",
            "--batch-size",
            "4");
    assertThat(r.exitCode()).as("exit code, stderr: %s", r.err()).isZero();
    JsonNode s = new ObjectMapper().readTree(r.out());
    double base = s.get("base_eval_loss").asDouble();
    double tuned = s.get("eval_loss").asDouble();
    assertThat(tuned)
        .as(
            "loss on the training rows after 40 steps (base %.4f, tuned %.4f): %s",
            base, tuned, r.err())
        .isLessThan(base - 0.5);
    assertThat(s.get("steps").asInt()).isEqualTo(40);
    assertThat(out.resolve("adapter_config.json")).exists();
    assertThat(out.resolve("adapter_model.safetensors")).exists();
    assertThat(Files.readAllLines(out.resolve("metrics.csv"))).as("header + 40 steps").hasSize(41);
    LoraWeights back =
        PeftAdapter.load(out, ModelConfig.load(CliScoreTest.STORIES), DataType.FLOAT);
    assertThat(back.config().rank()).isEqualTo(8);
    assertThat(back.parameterCount()).isEqualTo(s.get("trainable_params").asLong());
  }

  /**
   * The done-when criterion: on held-out examples the adapter's loss drops clearly below the base
   * model's. Code-alpaca (2k real code instructions) is far from the children's stories the base
   * was trained on, so a few hundred adapter steps teach a shift that carries to unseen examples.
   * The held-out rows are disjoint examples chosen by a hash (train's own split), never trained on.
   * Measured 2026-11-22: base 6.50 nats, 3.80 after 50 steps, 3.24 after 150; the test asserts a
   * drop of more than 1 nat after 60 steps.
   */
  @Test
  void heldOutEvalLossDropsClearlyBelowTheBaseModel() throws Exception {
    Path data =
        tokenizedAlpaca(
            ROOT.resolve("fixtures/data/alpaca-format-code-alpaca-2k.jsonl"),
            tmp.resolve("code.jsonl"),
            160);
    CliRunner r =
        CliRunner.run(
            "train",
            "--model",
            CliScoreTest.STORIES.toString(),
            "--data",
            data.toString(),
            "--output",
            tmp.resolve("code-adapter").toString(),
            "--rank",
            "8",
            "--lr",
            "2e-3",
            "--lr-ratio",
            "4",
            "--steps",
            "60",
            "--batch-size",
            "8",
            "--eval-every",
            "30");
    assertThat(r.exitCode()).as("exit code, stderr: %s", r.err()).isZero();
    JsonNode s = new ObjectMapper().readTree(r.out());
    double base = s.get("base_eval_loss").asDouble();
    double tuned = s.get("eval_loss").asDouble();
    assertThat(tuned)
        .as("held-out eval loss (base %.4f, tuned %.4f): %s", base, tuned, r.err())
        .isLessThan(base - 1.0);
  }

  /**
   * Alpaca-templated self-instruct seeds tokenized with the model's tokenizer; labels are -100 on
   * the prompt so only the response is learned, as DataCollatorForCompletionOnlyLM does.
   */
  static Path tokenizedSeeds(Path file, int maxLen) throws Exception {
    return tokenizedAlpaca(
        ROOT.resolve("data/self-instruct/alpaca-format-self-instruct-seed.jsonl"), file, maxLen);
  }

  /** Any Alpaca-format JSONL, templated and tokenized as {@link #tokenizedSeeds} does. */
  static Path tokenizedAlpaca(Path source, Path file, int maxLen) throws Exception {
    ObjectMapper json = new ObjectMapper();
    StringBuilder out = new StringBuilder();
    try (TextTokenizer tok = TextTokenizer.load(CliScoreTest.STORIES)) {
      List<String> lines = Files.readAllLines(source);
      for (String line : lines) {
        JsonNode row = json.readTree(line);
        String input = row.path("input").asText("");
        String prompt =
            ALPACA.formatted(
                input.isEmpty() ? "" : ", paired with an input that provides further context",
                row.get("instruction").asText(),
                input.isEmpty() ? "" : "### Input:\n" + input + "\n\n");
        int[] promptIds = tok.encode(prompt, true);
        int[] all = tok.encode(prompt + row.get("output").asText(), true);
        int[] ids = Arrays.copyOf(all, Math.min(all.length + 1, maxLen));
        if (ids.length > all.length) {
          ids[all.length] = tok.eosId();
        }
        if (promptIds.length >= ids.length - 1) {
          continue; // the response was truncated away: nothing to learn from this row
        }
        int[] labels = ids.clone();
        Arrays.fill(labels, 0, promptIds.length, -100);
        ObjectNode o = json.createObjectNode();
        o.putPOJO("input_ids", ids);
        o.putPOJO("labels", labels);
        out.append(o).append('\n');
      }
    }
    Files.writeString(file, out);
    return file;
  }
}
