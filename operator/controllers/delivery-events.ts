// The Kubernetes Event a rejected policy leaves on its pod, so `kubectl describe pod` shows it.
import type { Ack } from '../../sidecar/control/protocol.js';
import type { EventInput } from '../kube/index.js';

export function nackEvent(
  pod: { namespace: string; podName: string; podUid: string },
  ack: Ack,
): EventInput | undefined {
  if (ack.ok) return undefined;
  return {
    regarding: {
      apiVersion: 'v1',
      kind: 'Pod',
      namespace: pod.namespace,
      name: pod.podName,
      uid: pod.podUid,
    },
    type: 'Warning',
    reason: 'PolicyRejected',
    action: 'Distribute',
    // The sidecar's reason is schema paths and messages from the contract parser, never values.
    note: `sidecar rejected policy ${ack.version}: ${ack.error ?? 'no reason given'}`.slice(
      0,
      1024,
    ),
  };
}
