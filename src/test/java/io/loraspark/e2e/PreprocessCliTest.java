package io.loraspark.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.apache.parquet.example.data.Group;
import org.apache.parquet.hadoop.ParquetReader;
import org.apache.parquet.hadoop.example.GroupReadSupport;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The preprocess contract of DESIGN.md through the CLI, on code-alpaca 2k and stories260K. */
class PreprocessCliTest {
  static final Path ROOT = Path.of("..").toAbsolutePath().normalize();
  static final Path STORIES = ROOT.resolve("models/stories260K");
  static final Path CODE_ALPACA = ROOT.resolve("fixtures/data/code-alpaca-2k.json");

  @TempDir Path tmp;

  @Test
  void writesShardsAndManifestAndARerunWritesIdenticalShards() throws Exception {
    Path out = tmp.resolve("out");
    CliRunner first = preprocess(out);
    assertThat(first.exitCode()).as("exit code, stderr: %s", first.err()).isZero();
    assertThat(first.out().lines().toList()).as("stdout is one JSON line").hasSize(1);
    JsonNode summary = new ObjectMapper().readTree(first.out());
    long input = summary.get("input_rows").asLong();
    assertThat(input).as("code-alpaca 2k rows").isEqualTo(2017);
    assertThat(
            summary.get("accepted").asLong()
                + summary.get("rejected").asLong()
                + summary.get("duplicates").asLong())
        .as("input_rows = accepted + rejected + duplicates")
        .isEqualTo(input);
    assertThat(summary.get("accepted").asLong()).isGreaterThan(2000);
    assertThat(summary.get("rejected_by_reason").get("empty_field").asLong())
        .as("two code-alpaca rows have an empty output")
        .isEqualTo(2);
    assertThat(summary.get("output").asText()).isEqualTo(out.toString());
    JsonNode manifest = new ObjectMapper().readTree(out.resolve("manifest.json").toFile());
    assertThat(manifest.get("tokenizer_hash").asText())
        .isEqualTo("dcf6295d6dd73e048c4b21edabb9720e12326e49d9ffcbb6f3c0b097cbc68372");
    assertThat(manifest.get("accepted").asLong()).isEqualTo(summary.get("accepted").asLong());
    Map<String, List<String>> firstShards = shards(out);
    assertThat(firstShards).as("shard files").hasSize(4);
    assertThat(firstShards.values().stream().mapToInt(List::size).sum())
        .isEqualTo(summary.get("accepted").asInt());
    Files.writeString(out.resolve("shards/part-00099.parquet"), "stale");

    CliRunner second = preprocess(out);
    assertThat(second.exitCode()).as("rerun exit code, stderr: %s", second.err()).isZero();
    assertThat(second.out()).as("same summary").isEqualTo(first.out());
    Map<String, List<String>> secondShards = shards(out);
    assertThat(secondShards.keySet())
        .as("stale files are replaced")
        .isEqualTo(firstShards.keySet());
    for (String shard : firstShards.keySet()) {
      assertThat(secondShards.get(shard))
          .as("rows and their order in %s", shard)
          .containsExactlyElementsOf(firstShards.get(shard));
    }
    assertThat(Files.exists(out.resolve("rejected"))).isTrue();
    try (Stream<Path> left = Files.list(out)) {
      assertThat(left.map(p -> p.getFileName().toString()).filter(n -> n.startsWith("_staging")))
          .as("no staging directory is left")
          .isEmpty();
    }
  }

  /** The shards feed training directly: preprocess → train on its output (split column). */
  @Test
  void trainReadsThePreprocessOutput() throws Exception {
    Path out = tmp.resolve("prep");
    CliRunner prep =
        CliRunner.run(
            "preprocess",
            "--input",
            ROOT.resolve("data/self-instruct/alpaca-format-self-instruct-seed.jsonl").toString(),
            "--model",
            STORIES.toString(),
            "--output",
            out.toString(),
            "--max-seq-len",
            "160",
            "--master",
            "local[2]");
    assertThat(prep.exitCode()).as("stderr: %s", prep.err()).isZero();
    CliRunner train =
        CliRunner.run(
            "train",
            "--model",
            STORIES.toString(),
            "--data",
            out.toString(),
            "--output",
            tmp.resolve("adapter").toString(),
            "--rank",
            "4",
            "--lr",
            "2e-3",
            "--steps",
            "10",
            "--batch-size",
            "4",
            "--quiet");
    assertThat(train.exitCode()).as("stderr: %s", train.err()).isZero();
    JsonNode s = new ObjectMapper().readTree(train.out());
    assertThat(s.get("steps").asInt()).isEqualTo(10);
    assertThat(s.get("eval_loss").asDouble())
        .as("eval rows come from the shards' eval split")
        .isFinite()
        .isLessThan(s.get("base_eval_loss").asDouble());
  }

  @Test
  void missingInputIsExit2WithOneLine() {
    CliRunner r =
        CliRunner.run(
            "preprocess",
            "--input",
            tmp.resolve("nope.jsonl").toString(),
            "--model",
            STORIES.toString(),
            "--output",
            tmp.resolve("out").toString());
    CliScoreTest.assertInputError(r, "nope.jsonl");
    assertThat(Files.exists(tmp.resolve("out"))).as("no output is written").isFalse();
  }

  @Test
  void badOptionsAndMissingTokenizerAreExit2WithOneLine() throws IOException {
    String in = CODE_ALPACA.toString();
    String out = tmp.resolve("out").toString();
    CliScoreTest.assertInputError(
        CliRunner.run(
            "preprocess",
            "--input",
            in,
            "--model",
            STORIES.toString(),
            "--output",
            out,
            "--format",
            "oasst"),
        "oasst");
    CliScoreTest.assertInputError(
        CliRunner.run(
            "preprocess",
            "--input",
            in,
            "--model",
            STORIES.toString(),
            "--output",
            out,
            "--eval-fraction",
            "1.5"),
        "--eval-fraction");
    CliScoreTest.assertInputError(
        CliRunner.run(
            "preprocess",
            "--input",
            in,
            "--model",
            STORIES.toString(),
            "--output",
            out,
            "--template",
            "chat"),
        "chat_template");
    Path empty = Files.createDirectories(tmp.resolve("model"));
    CliScoreTest.assertInputError(
        CliRunner.run("preprocess", "--input", in, "--model", empty.toString(), "--output", out),
        "tokenizer.json");
  }

  private static CliRunner preprocess(Path out) {
    return CliRunner.run(
        "preprocess",
        "--input",
        CODE_ALPACA.toString(),
        "--model",
        STORIES.toString(),
        "--output",
        out.toString(),
        "--master",
        "local[2]");
  }

  /** Rows of each shard file as text, read with the plain Parquet reader, in file order. */
  static Map<String, List<String>> shards(Path out) throws IOException {
    Map<String, List<String>> shards = new LinkedHashMap<>();
    try (Stream<Path> files = Files.list(out.resolve("shards"))) {
      for (Path f :
          files
              .filter(p -> p.getFileName().toString().matches("part-.*\\.parquet"))
              .sorted()
              .toList()) {
        List<String> rows = new ArrayList<>();
        try (ParquetReader<Group> reader =
            ParquetReader.builder(
                    new GroupReadSupport(), new org.apache.hadoop.fs.Path(f.toString()))
                .build()) {
          for (Group g = reader.read(); g != null; g = reader.read()) {
            rows.add(g.toString());
          }
        }
        shards.put(f.getFileName().toString(), rows);
      }
    }
    return shards;
  }
}
