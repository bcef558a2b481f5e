package io.loraspark.e2e;

import static org.assertj.core.api.Assertions.assertThat;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.loraspark.pipeline.cli.Main;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;

/**
 * The Airflow DAG in conf/airflow: it compiles as Python, and its SparkSubmitOperator runs the
 * command the CLI documents. Airflow itself cannot be installed here, so the DAG is parsed with
 * Python's {@code ast} and the operator's literal arguments are compared with {@code run
 * --print-spark-submit} and with the options {@code run} accepts.
 */
class AirflowDagTest {
  static final Path DAG = CliScoreTest.ROOT.resolve("conf/airflow/lora_spark_dag.py");

  /**
   * Prints the SparkSubmitOperator's keyword arguments as JSON (f-strings rendered from module
   * constants).
   */
  static final String EXTRACT =
      """
      import ast, json, sys
      src = open(sys.argv[1]).read()
      compile(src, sys.argv[1], "exec")
      tree = ast.parse(src)
      consts = {}
      for node in tree.body:
          if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
              consts[node.targets[0].id] = node.value.value
      def value(n):
          if isinstance(n, ast.JoinedStr):
              return "".join(value(v) for v in n.values)
          if isinstance(n, ast.FormattedValue):
              return str(consts[n.value.id])
          if isinstance(n, ast.Name):
              return consts[n.id]
          if isinstance(n, ast.BinOp) and isinstance(n.op, ast.Add):
              return value(n.left) + value(n.right)
          if isinstance(n, ast.List):
              return [value(e) for e in n.elts]
          if isinstance(n, ast.Dict):
              return {value(k): value(v) for k, v in zip(n.keys, n.values)}
          return ast.literal_eval(n)
      calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)
               and getattr(n.func, "id", "") == "SparkSubmitOperator"]
      assert len(calls) == 1, "expected one SparkSubmitOperator"
      print(json.dumps({k.arg: value(k.value) for k in calls[0].keywords}))
      """;

  @Test
  void dagCompilesAndItsSparkSubmitMatchesTheCli() throws Exception {
    Process p =
        new ProcessBuilder("python3", "-c", EXTRACT, DAG.toString())
            .redirectErrorStream(true)
            .start();
    String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
    assertThat(p.waitFor(60, TimeUnit.SECONDS)).isTrue();
    assertThat(p.exitValue()).as("python3: %s", out).isZero();
    JsonNode op = new ObjectMapper().readTree(out);

    assertThat(op.get("java_class").asText()).isEqualTo(Main.class.getName());
    assertThat(op.get("application").asText()).endsWith("-spark.jar");
    List<String> args = new ArrayList<>();
    op.get("application_args").forEach(a -> args.add(a.asText()));
    assertThat(args.get(0)).isEqualTo("run");
    assertThat(args).containsSubsequence("--run-id", "{{ run_id }}");
    assertThat(args).containsSubsequence("--run-date", "{{ ds }}");
    assertThat(args.get(args.indexOf("--output") + 1))
        .as("one output per run date")
        .contains("{{ ds }}");

    // every option the DAG passes is one `run` accepts, with a value where it takes one
    CommandLine run = new CommandLine(new Main()).getSubcommands().get("run");
    for (int i = 1; i < args.size(); i++) {
      CommandLine.Model.OptionSpec o = run.getCommandSpec().findOption(args.get(i));
      assertThat(o).as("run accepts %s", args.get(i)).isNotNull();
      if (o.arity().max() > 0) {
        i++;
      }
    }

    // the CLI's own spark-submit line for the same run has the same class and application args
    Path config = CliScoreTest.ROOT.resolve("conf/sweep-example.yaml");
    CliRunner cli =
        CliRunner.run(
            "run",
            "--config",
            config.toString(),
            "--run-id",
            "r1",
            "--run-date",
            "2026-11-22",
            "--output",
            "/data/runs/2026-11-22",
            "--print-spark-submit");
    assertThat(cli.exitCode()).as("stderr: %s", cli.err()).isZero();
    List<String> submit = List.of(cli.out().strip().split(" "));
    assertThat(submit).containsSubsequence("--class", op.get("java_class").asText());
    int app = submit.indexOf("run");
    assertThat(submit.subList(app, submit.size()))
        .containsSubsequence(
            "run",
            "--config",
            config.toAbsolutePath().normalize().toString(),
            "--run-id",
            "r1",
            "--output");
    for (String key : Set.of("spark.task.cpus", "spark.executorEnv.OMP_NUM_THREADS")) {
      assertThat(op.get("conf").get(key).asText()).as(key).isEqualTo("1");
      assertThat(cli.out()).contains(key + "=1");
    }
  }
}
