/** The error catalogue in one import: the domain error and its refusals, and their HTTP translation. */
export {
  GatewayError,
  REFUSALS,
  refusal,
  unavailable,
  UNAVAILABLE_RETRY_AFTER_SECONDS,
  type Dependency,
  type GatewayErrorOptions,
  type ProblemCode,
  type Refusal,
} from "./gateway-error";
export { PROBLEMS, methodNotAllowed, onError, problemResponse, type ProblemSpec } from "./http/problem";
