// Stops the e2e run's control plane and removes its data dir.
export default async function globalTeardown(): Promise<void> {
  const cp = globalThis.__llmproxyControlPlane;
  globalThis.__llmproxyControlPlane = undefined;
  await cp?.stop();
}
