// The llmproxy.io/v1alpha1 API: schemas and types of LlmPolicy and LlmBudget.
export * from './common.js';
export * from './llm-policy.js';
export * from './llm-budget.js';
