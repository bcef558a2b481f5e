package io.loraspark.pipeline.cli;

import io.loraspark.pipeline.serve.LoraServer;
import io.loraspark.pipeline.serve.ServeOptions;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.concurrent.CountDownLatch;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import sun.misc.Signal;

/** {@code serve}: an OpenAI-compatible server for one base model and many adapters. */
@Command(
    name = "serve",
    mixinStandardHelpOptions = true,
    description =
        "Serves the base model and its adapters over OpenAI's HTTP API (/v1/completions,"
            + " /v1/chat/completions with stream, /v1/models, vLLM's /v1/load_lora_adapter and"
            + " /v1/unload_lora_adapter, /health, /metrics). The request's model names the adapter;"
            + " 'auto' routes to the adapter under which the prompt is most likely.")
final class ServeCommand implements Callable<Integer> {
  /**
   * Signals that drain and stop the server; handled here (not by a shutdown hook) so that the
   * drained server exits 0, where a JVM ended by a signal exits 128 + its number.
   */
  private static final List<String> STOP_SIGNALS = List.of("TERM", "INT");

  @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

  @Option(names = "--model", required = true, description = "Hugging Face checkpoint directory")
  Path model;

  @Option(names = "--adapters", description = "a directory of PEFT adapter directories")
  Path adapters;

  @Option(names = "--run", description = "a sweep run directory: adapters/<id>/ and best/")
  Path run;

  @Option(
      names = "--adapter",
      paramLabel = "NAME=DIR",
      description = "an adapter directory served as NAME (repeatable)")
  List<String> adapter = new ArrayList<>();

  @Option(
      names = "--adapter-root",
      description = "a directory load_lora_adapter may read adapters from (repeatable)")
  List<Path> roots = new ArrayList<>();

  @Option(
      names = "--drain-timeout",
      paramLabel = "SECONDS",
      defaultValue = "30",
      description =
          "on SIGTERM or SIGINT, how long to finish the requests in flight before stopping"
              + " (default: ${DEFAULT-VALUE})")
  double drainSeconds;

  @Option(names = "--host", defaultValue = "127.0.0.1", description = "(default: ${DEFAULT-VALUE})")
  String host;

  @Option(names = "--port", defaultValue = "8000", description = "(default: ${DEFAULT-VALUE})")
  int port;

  @Option(
      names = "--cache-bytes",
      defaultValue = "1073741824",
      description = "adapter cache budget in bytes (default: ${DEFAULT-VALUE})")
  long cacheBytes;

  @Option(
      names = "--max-batch",
      defaultValue = "64",
      description = "token rows per decode step (default: ${DEFAULT-VALUE})")
  int maxBatch;

  @Option(
      names = "--max-running",
      defaultValue = "32",
      description = "requests decoding at once (default: ${DEFAULT-VALUE})")
  int maxRunning;

  @Option(
      names = "--max-queue",
      defaultValue = "64",
      description = "requests waiting beyond those; then 429 (default: ${DEFAULT-VALUE})")
  int maxQueue;

  @Option(names = "--api-key", description = "require 'Authorization: Bearer KEY'")
  String apiKey;

  @Mixin DecodeOptions decoding;

  @Override
  public Integer call() throws InterruptedException {
    if (!(drainSeconds >= 0) || Double.isInfinite(drainSeconds)) {
      throw new IllegalArgumentException(
          "--drain-timeout " + drainSeconds + ": expected a number of seconds >= 0");
    }
    Map<String, Path> named = new LinkedHashMap<>();
    for (String a : adapter) {
      int eq = a.indexOf('=');
      if (eq <= 0 || eq == a.length() - 1) {
        throw new IllegalArgumentException("--adapter '" + a + "': expected NAME=DIR");
      }
      named.put(a.substring(0, eq), Path.of(a.substring(eq + 1)));
    }
    decoding.applyThreads();
    ServeOptions options =
        new ServeOptions(
            model,
            adapters,
            run,
            named,
            roots,
            cacheBytes,
            maxBatch,
            maxRunning,
            maxQueue,
            apiKey,
            decoding.precision());
    LoraServer server = options.build();
    int bound = server.start(host, port);
    CountDownLatch stop = new CountDownLatch(1);
    for (String name : STOP_SIGNALS) {
      Signal.handle(
          new Signal(name),
          signal -> {
            if (stop.getCount() == 0) { // a second signal: stop now, as uvicorn does
              Runtime.getRuntime().halt(128 + signal.getNumber());
            }
            stop.countDown();
          });
    }
    System.err.println("serve: http://" + host + ":" + bound + "/v1 (model " + model + ")");
    spec.commandLine().getOut().println("{\"url\": \"http://" + host + ":" + bound + "/v1\"}");
    spec.commandLine().getOut().flush();
    stop.await();
    System.err.println("serve: draining requests in flight");
    long drainMillis = Math.round(drainSeconds * 1000);
    boolean drained = server.drain(drainMillis);
    server.close();
    System.err.println(
        drained
            ? "serve: stopped"
            : "serve: stopped with requests unanswered after " + drainMillis + " ms");
    return Main.OK;
  }
}
