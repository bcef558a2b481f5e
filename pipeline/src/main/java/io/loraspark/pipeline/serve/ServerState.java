package io.loraspark.pipeline.serve;

import io.loraspark.pipeline.generate.TextGeneration;
import io.loraspark.train.model.ModelConfig;

/**
 * What every handler of one server shares: the model's shape and names, the tokenizer side, the
 * adapters, the decoding thread, the router and the metrics.
 *
 * @param baseName the name requests use for the base model (no adapter)
 * @param routerName the name that asks for routing ({@code auto})
 * @param apiKey the key requests must send, or null for none
 */
record ServerState(
    ModelConfig config,
    String baseName,
    String routerName,
    String apiKey,
    TextGeneration text,
    ChatPrompt chatPrompt,
    AdapterCatalog catalog,
    DecodeService decode,
    Router router,
    ServeMetrics metrics) {}
