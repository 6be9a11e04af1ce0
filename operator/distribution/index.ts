export {
  emptyDistributionStats,
  startDistributionServer,
  type DistributionOptions,
  type DistributionServer,
  type DistributionStats,
  type PodDeliveryState,
} from './server.js';
export { identityFromReview, type AuthFailureReason, type PodIdentity } from './auth.js';
export type { Rate } from './throttle.js';
