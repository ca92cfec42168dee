/** One epoch of training, as reported (its own module: the package's types reach it without the training graphs). */
export interface EpochReport {
  epoch: number;
  trainLoss: number;
  validationLoss?: number;
  validationAccuracy?: number;
  accuracyOld?: number;
  accuracyNew?: number;
  examplesPerSecond: number;
}
