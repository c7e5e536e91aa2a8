import { AssignerProtocol, type PartitionAssigner } from 'kafkajs';
import { assignPartitions, type MemberReport } from '../../replication/index.js';

export const FARAD_ASSIGNER = 'farad-copartitioned';

/** What this member tells the group leader about itself (JSON in the metadata's userData). */
export type OwnReport = () => Omit<MemberReport, 'memberId'>;

/**
 * kafkajs assigner for farad's group: partition p of every input topic goes to the same member,
 * balanced and sticky (see replication/assignor). Members report what they hold in `userData`.
 */
export function faradAssigner(partitions: number, report: OwnReport): PartitionAssigner {
  return () => ({
    name: FARAD_ASSIGNER,
    version: 1,
    protocol({ topics }) {
      return {
        name: FARAD_ASSIGNER,
        metadata: AssignerProtocol.MemberMetadata.encode({ version: 1, topics, userData: Buffer.from(JSON.stringify(report())) }),
      };
    },
    async assign({ members, topics }) {
      const reports: MemberReport[] = members.map(({ memberId, memberMetadata }) => {
        const metadata = AssignerProtocol.MemberMetadata.decode(memberMetadata);
        let own: Partial<MemberReport> = {};
        try {
          own = JSON.parse(metadata?.userData.toString('utf8') || '{}') as Partial<MemberReport>;
        } catch {
          // A member with unreadable metadata is treated as new.
        }
        return { memberId, instanceId: own.instanceId ?? memberId, active: own.active ?? [], ...(own.warm ? { warm: own.warm } : {}) };
      });
      const plan = assignPartitions(partitions, reports);
      return members.map(({ memberId }) => {
        const owned = plan.get(memberId) ?? [];
        const assignment = Object.fromEntries(topics.map((topic) => [topic, owned]));
        return {
          memberId,
          memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 1, assignment, userData: Buffer.alloc(0) }),
        };
      });
    },
  });
}

/** Assigns this (only) member exactly the partitions it asks for: private changelog readers. */
export function selfAssigner(want: () => Record<string, number[]>): PartitionAssigner {
  return () => ({
    name: 'farad-self',
    version: 1,
    protocol({ topics }) {
      return { name: 'farad-self', metadata: AssignerProtocol.MemberMetadata.encode({ version: 1, topics, userData: Buffer.alloc(0) }) };
    },
    async assign({ members }) {
      return members.map(({ memberId }, i) => ({
        memberId,
        memberAssignment: AssignerProtocol.MemberAssignment.encode({ version: 1, assignment: i === 0 ? want() : {}, userData: Buffer.alloc(0) }),
      }));
    },
  });
}
