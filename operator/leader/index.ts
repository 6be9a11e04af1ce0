export { startLeaderElection, type LeaderElectionOptions, type LeaderElector } from './elector.js';
export { decide, observe, type Decision, type Observation } from './lease.js';
