package io.loraspark.e2e;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.within;

import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Runs the packaged application through {@code bin/lora-pipeline} as a separate process, as a user
 * does: the shaded jar, the launcher's JVM flags and the logging defaults together.
 */
class LauncherIT {
  static final Path ROOT = Path.of("..").toAbsolutePath().normalize();

  @TempDir Path tmp;

  record Result(int code, String out, List<String> errLines) {}

  static Result launch(String... args) throws Exception {
    List<String> cmd = new ArrayList<>();
    cmd.add(ROOT.resolve("bin/lora-pipeline").toString());
    cmd.addAll(List.of(args));
    ProcessBuilder pb = new ProcessBuilder(cmd).directory(ROOT.toFile());
    Path out = Files.createTempFile("lora-out", ".txt");
    Path err = Files.createTempFile("lora-err", ".txt");
    pb.redirectOutput(out.toFile()).redirectError(err.toFile());
    Process p = pb.start();
    assertThat(p.waitFor(5, TimeUnit.MINUTES)).as("finished in time").isTrue();
    List<String> errLines =
        Files.readAllLines(err, StandardCharsets.UTF_8).stream().filter(l -> !l.isBlank()).toList();
    return new Result(p.exitValue(), Files.readString(out), errLines);
  }

  @Test
  void launcherScoresTheBundledModel() throws Exception {
    Result r =
        launch(
            "score",
            "--model",
            "models/stories260K",
            "--data",
            "fixtures/reference/stories260K_input_ids.jsonl");
    assertThat(r.code()).as("exit code, stderr: %s", r.errLines()).isZero();
    assertThat(r.out().lines().toList()).as("one JSON line on stdout").hasSize(1);
    assertThat(new ObjectMapper().readTree(r.out()).get("loss").asDouble())
        .isCloseTo(0.849495, within(1e-4));
  }

  @Test
  void launcherInputErrorIsOneStderrLineAndExitTwo() throws Exception {
    Path model = Files.createDirectories(tmp.resolve("model"));
    Files.writeString(model.resolve("config.json"), "{\"architectures\": [\"BertModel\"]}");
    Result r =
        launch(
            "score",
            "--model",
            model.toString(),
            "--data",
            "fixtures/reference/stories260K_input_ids.jsonl");
    assertThat(r.code()).as("exit code, stderr: %s", r.errLines()).isEqualTo(2);
    assertThat(r.errLines()).as("exactly one stderr line, no stack trace or log noise").hasSize(1);
    assertThat(r.errLines().get(0)).contains("config.json").contains("LlamaForCausalLM");
    assertThat(r.out()).isEmpty();
  }
}
