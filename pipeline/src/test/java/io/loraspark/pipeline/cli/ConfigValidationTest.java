package io.loraspark.pipeline.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.loraspark.pipeline.sweep.ConfigKeys;
import io.loraspark.pipeline.sweep.SweepConfig;
import io.loraspark.pipeline.sweep.SweepPlan;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Every key of {@link ConfigKeys}, given a value of the wrong type, is refused by the same checks
 * {@code run} makes before Spark starts, with one line naming the key. Driven by the key table, so
 * a key added without a type check fails here.
 */
class ConfigValidationTest {
  @TempDir Path dir;

  private static final String VALID =
      """
      model: models/stories260K
      run_id: t
      preprocess:
        input: data/x.jsonl
        max_seq_len: 64
      defaults:
        steps: 4
      grid:
        rank: [2, 4]
      pruning:
        strategy: successive_halving
        eta: 2
      """;

  static Stream<ConfigKeys.Key> keys() {
    List<ConfigKeys.Key> all = new ArrayList<>();
    all.addAll(ConfigKeys.TOP);
    all.addAll(ConfigKeys.PRUNING);
    all.addAll(ConfigKeys.PREPROCESS);
    all.addAll(ConfigKeys.ADAPTER);
    return all.stream();
  }

  @Test
  void theBaseConfigIsValid() throws IOException {
    validate(write(VALID));
  }

  @ParameterizedTest(name = "{0}")
  @MethodSource("keys")
  void aWrongTypeIsRefusedNamingTheKey(ConfigKeys.Key key) throws IOException {
    String bad = wrongValue(key.type());
    String yaml =
        switch (key.section()) {
          case "" -> withTopLevel(key.name(), bad);
          case "adapter" ->
              VALID.replace("defaults:\n", "defaults:\n  " + key.name() + ": " + bad + "\n");
          default ->
              VALID.replace(
                  key.section() + ":\n", key.section() + ":\n  " + key.name() + ": " + bad + "\n");
        };
    Path file = write(yaml);
    assertThatThrownBy(() -> validate(file))
        .as("%s: %s", key.path(), bad)
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining(key.name())
        .hasMessageNotContaining("\n");
  }

  @Test
  void aWrongTypeInDefaultsIsRefusedEvenWhereTheGridOrTheSeedDerivationWouldReplaceIt()
      throws IOException {
    for (String key : List.of("rank", "seed")) {
      Path file = write(VALID.replace("defaults:\n", "defaults:\n  " + key + ": many\n"));
      assertThatThrownBy(() -> validate(file)).as(key).hasMessageContaining(key);
    }
  }

  @Test
  void aGridOfMillionsOfAdaptersIsRefusedBeforePlanning() throws IOException {
    String values = "[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]";
    Path file =
        write(
            VALID.replace(
                "  rank: [2, 4]\n",
                "  rank: VALS\n  steps: VALS\n  batch_size: VALS\n  seed: VALS\n"
                    .replace("VALS", values)));
    assertThatThrownBy(() -> validate(file)).hasMessageContaining("more than 10000 adapters");
  }

  @Test
  void pruningMustBeAWordOrAMapping() throws IOException {
    Path file = write(VALID.replaceAll("(?s)pruning:.*", "pruning: 5\n"));
    assertThatThrownBy(() -> validate(file))
        .hasMessageContaining("pruning must be none, successive_halving or a mapping");
  }

  @Test
  void aRankBelowOneIsRefused() throws IOException {
    Path file = write(VALID.replace("rank: [2, 4]", "rank: [2, 0]"));
    assertThatThrownBy(() -> validate(file)).hasMessageContaining("rank");
  }

  /** A value of another type than {@code type}: the checks must reject each of these. */
  private static String wrongValue(ConfigKeys.Type type) {
    return switch (type) {
      case STRING, PATH, URI -> "{nested: 1}";
      case INTEGER -> "many";
      case NUMBER -> "lots";
      case BOOLEAN -> "maybe";
      case NAMES -> "[1, 2]";
      case MAPPING -> "[1, 2]";
      case LIST -> "5";
    };
  }

  private static String withTopLevel(String name, String value) {
    StringBuilder out = new StringBuilder();
    boolean replaced = false;
    List<String> lines = VALID.lines().toList();
    for (int i = 0; i < lines.size(); i++) {
      String line = lines.get(i);
      if (line.startsWith(name + ":")) {
        out.append(name).append(": ").append(value).append('\n');
        while (i + 1 < lines.size() && lines.get(i + 1).startsWith("  ")) {
          i++; // drop the section's body
        }
        replaced = true;
      } else {
        out.append(line).append('\n');
      }
    }
    if (!replaced) {
      out.append(name).append(": ").append(value).append('\n');
    }
    return out.toString();
  }

  private Path write(String yaml) throws IOException {
    Path f = Files.createTempFile(dir, "sweep", ".yaml");
    Files.writeString(f, yaml);
    return f;
  }

  /** The checks {@code run} makes before it starts Spark (paths aside). */
  private static void validate(Path file) {
    SweepConfig c = SweepConfig.read(file);
    assertThat(SweepPlan.expand(c)).isNotEmpty();
    if (c.preprocess() != null) {
      RunCommand.preprocessConfig(c, Path.of("runs/t"));
    }
  }
}
