/**
 * Prompt templates (Alpaca, sandboxed Jinja chat templates) rendering conversations into pieces.
 */
package io.loraspark.prep.template;
