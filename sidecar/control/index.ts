export {
  connectToOperator,
  type OperatorClientOptions,
  type OperatorConnection,
  type OperatorConnectionState,
} from './client.js';
