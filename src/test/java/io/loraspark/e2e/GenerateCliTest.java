package io.loraspark.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.loraspark.pipeline.testing.RandomAdapters;
import io.loraspark.train.lora.LoraMethod;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.ModelWeights;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code generate} on the KV-cached engine, on the real stories260K: seeded sampling, stop strings,
 * adapters composed by weight, and bad input as one line with exit 2.
 */
class GenerateCliTest {
  static final Path STORIES = CliScoreTest.STORIES;
  static final String PROMPT = "Once upon a time";

  @TempDir static Path shared;
  static Path lora;
  static Path dora;

  /** A LoRA and a DoRA adapter with random B on every target, saved as PEFT directories. */
  @BeforeAll
  static void adapters() {
    ModelWeights base = CheckpointLoader.load(STORIES);
    lora = save(base, LoraMethod.LORA, "lora");
    dora = save(base, LoraMethod.DORA, "dora");
  }

  /** Rank 4, A initialised with seed 7, B ~ N(0, 0.3²) from seed 11. */
  private static Path save(ModelWeights base, LoraMethod method, String name) {
    return RandomAdapters.save(
        base, shared.resolve(name), method, 4, 7, 11, 0.3, STORIES.toString());
  }

  private static JsonNode generate(String... extra) throws Exception {
    List<String> args =
        new ArrayList<>(
            List.of("generate", "--model", STORIES.toString(), "--prompt", PROMPT, "--json"));
    args.addAll(Arrays.asList(extra));
    CliRunner r = CliRunner.run(args.toArray(String[]::new));
    assertThat(r.exitCode()).as("generate %s, stderr: %s", args, r.err()).isZero();
    return new ObjectMapper().readTree(r.out());
  }

  @Test
  void aSeededSampleIsTheSameTextOnEveryRun() throws Exception {
    String[] sampled = {"--max-new-tokens", "40", "--temperature", "0.9", "--top-k", "40"};
    JsonNode a = generate(concat(sampled, "--seed", "5"));
    JsonNode b = generate(concat(sampled, "--seed", "5"));
    JsonNode c = generate(concat(sampled, "--seed", "6"));
    JsonNode greedy = generate("--max-new-tokens", "40");
    assertThat(b).isEqualTo(a);
    assertThat(c.get("generated_ids")).as("another seed").isNotEqualTo(a.get("generated_ids"));
    assertThat(a.get("generated_ids"))
        .as("sampled, not greedy")
        .isNotEqualTo(greedy.get("generated_ids"));
  }

  @Test
  void aStopStringEndsTheTextBeforeIt() throws Exception {
    JsonNode free = generate("--max-new-tokens", "60");
    String completion = free.get("completion").asText();
    String stop = completion.substring(20, 25);
    int at = completion.indexOf(stop);
    JsonNode stopped = generate("--max-new-tokens", "60", "--stop", stop);
    assertThat(stopped.get("completion").asText()).isEqualTo(completion.substring(0, at));
    assertThat(stopped.get("finish_reason").asText()).isEqualTo("stop");
    assertThat(stopped.get("text").asText()).isEqualTo(PROMPT + completion.substring(0, at));
    assertThat(free.get("finish_reason").asText()).isEqualTo("length");
  }

  /** Half of an adapter twice is the adapter once: the weighted sum of the updates. */
  @Test
  void composedWeightsAddTheUpdates() throws Exception {
    JsonNode once = generate("--max-new-tokens", "30", "--adapter", lora.toString());
    JsonNode halves =
        generate(
            "--max-new-tokens",
            "30",
            "--adapter",
            "a=" + lora + ":0.5",
            "--adapter",
            "b=" + lora + ":0.5");
    JsonNode base = generate("--max-new-tokens", "30");
    assertThat(halves.get("generated_ids")).isEqualTo(once.get("generated_ids"));
    assertThat(once.get("generated_ids"))
        .as("the adapter matters")
        .isNotEqualTo(base.get("generated_ids"));
    assertThat(halves.get("adapters").toString())
        .isEqualTo("[{\"name\":\"a\",\"weight\":0.5},{\"name\":\"b\",\"weight\":0.5}]");
  }

  @Test
  void aStopTokenIdEndsTheRequest() throws Exception {
    JsonNode free = generate("--max-new-tokens", "30");
    int stop = free.get("generated_ids").get(6).asInt();
    JsonNode stopped =
        generate("--max-new-tokens", "30", "--stop-token-id", Integer.toString(stop));
    JsonNode ids = stopped.get("generated_ids");
    assertThat(ids.size()).isLessThanOrEqualTo(7);
    assertThat(ids.get(ids.size() - 1).asInt()).isEqualTo(stop);
    assertThat(stopped.get("finish_reason").asText()).isEqualTo("stop");
  }

  @Test
  void logprobsAreReportedPerToken() throws Exception {
    JsonNode out = generate("--max-new-tokens", "8", "--logprobs");
    assertThat(out.get("logprobs")).hasSize(8);
    for (JsonNode lp : out.get("logprobs")) {
      assertThat(lp.asDouble()).isLessThanOrEqualTo(0.0).isGreaterThan(-50.0);
    }
  }

  @Test
  void badInputIsOneLineAndExit2() {
    assertInputError("temperature", "--temperature", "-1");
    assertInputError("top_p", "--top-p", "0");
    assertInputError("top_k", "--top-k", "-2");
    assertInputError("max_new_tokens", "--max-new-tokens", "-1");
    assertInputError("does not exist", "--adapter", shared.resolve("missing").toString());
    assertInputError(
        "two adapters are named 'lora'",
        "--adapter",
        lora.toString(),
        "--adapter",
        lora.toString());
    assertInputError(
        "adapter 'dora' is dora", "--adapter", lora.toString(), "--adapter", dora.toString());
    assertInputError("a stop string must not be empty", "--stop", "");
    assertInputError("--stop-token-id 600 is outside the vocabulary", "--stop-token-id", "600");
    assertInputError("unknown precision 'fp8'", "--precision", "fp8");
    assertInputError("--threads must be >= 1", "--threads", "0");
  }

  /**
   * {@code --precision bf16} decodes with weights rounded to bfloat16: greedy tokens of stories260K
   * that agree with fp32's at the start (bf16 moves logits by well under the gaps between the top
   * tokens of a real model's first steps) and the same tokens on every run; auto is fp32.
   */
  @Test
  void bf16DecodingStartsLikeFp32AndRepeatsAndThreadsDoNotChangeTokens() throws Exception {
    JsonNode fp32 = generate("--max-new-tokens", "40");
    JsonNode bf16 = generate("--max-new-tokens", "40", "--precision", "bf16");
    JsonNode again = generate("--max-new-tokens", "40", "--precision", "bf16");
    JsonNode auto = generate("--max-new-tokens", "40", "--precision", "auto");
    JsonNode oneThread = generate("--max-new-tokens", "40", "--threads", "1");
    JsonNode twoThreads = generate("--max-new-tokens", "40", "--threads", "2");
    assertThat(oneThread.get("generated_ids")).isEqualTo(fp32.get("generated_ids"));
    assertThat(twoThreads.get("generated_ids")).isEqualTo(fp32.get("generated_ids"));
    assertThat(again.get("generated_ids")).isEqualTo(bf16.get("generated_ids"));
    assertThat(auto.get("generated_ids")).isEqualTo(fp32.get("generated_ids"));
    for (int i = 0; i < 4; i++) {
      assertThat(bf16.get("generated_ids").get(i))
          .as("token %d", i)
          .isEqualTo(fp32.get("generated_ids").get(i));
    }
  }

  @Test
  void aPromptLongerThanTheContextIsRefused() {
    CliRunner r =
        CliRunner.run(
            "generate", "--model", STORIES.toString(), "--prompt", "Once upon a time ".repeat(400));
    assertThat(r.exitCode()).as("stderr: %s", r.err()).isEqualTo(2);
    assertThat(r.errLines()).hasSize(1);
    assertThat(r.errLines().get(0)).contains("max_position_embeddings");
  }

  private static void assertInputError(String named, String... extra) {
    List<String> args =
        new ArrayList<>(List.of("generate", "--model", STORIES.toString(), "--prompt", PROMPT));
    args.addAll(Arrays.asList(extra));
    CliRunner r = CliRunner.run(args.toArray(String[]::new));
    assertThat(r.exitCode()).as("%s: exit code, stderr: %s", args, r.err()).isEqualTo(2);
    assertThat(r.errLines()).as("%s: one stderr line", args).hasSize(1);
    assertThat(r.errLines().get(0)).as("%s", args).contains(named);
    assertThat(r.out()).isEmpty();
  }

  private static String[] concat(String[] a, String... b) {
    String[] out = Arrays.copyOf(a, a.length + b.length);
    System.arraycopy(b, 0, out, a.length, b.length);
    return out;
  }
}
