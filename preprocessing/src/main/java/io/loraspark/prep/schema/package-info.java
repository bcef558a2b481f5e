/**
 * Record formats (Alpaca, Dolly, ShareGPT, messages, ...) mapped onto one normalized conversation.
 */
package io.loraspark.prep.schema;
